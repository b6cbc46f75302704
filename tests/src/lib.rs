//! Runs the real `work4life` binary the way operators do, in both deployment modes, so that
//! suite tests exercise the same processes, ports and configuration as production:
//! [`Suite::all_in_one`] (one process, `--target=all`) and [`Suite::split`] (one process per
//! service, peers addressed by `W4L_<SERVICE>_URL`). Each suite gets its own database.

pub mod private_postgres;
pub mod steps;
pub mod world;

use std::{collections::HashMap, path::PathBuf, process::Stdio, time::Duration};

use anyhow::Context as _;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Every service, in the binary's order.
pub const SERVICES: [&str; 5] = ["identity", "intake", "grants", "coaching", "notifications"];

/// The `work4life` binary built beside this test (cargo builds workspace binaries before tests).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("W4L_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).context("test binary location")?;
    let bin = dir.join("work4life");
    anyhow::ensure!(bin.exists(), "{} not built: run `cargo build -p work4life` (scripts/test does)", bin.display());
    Ok(bin)
}

/// Admin URL of the PostgreSQL server the suite uses; each suite creates its own database there.
pub fn server_url() -> String {
    std::env::var("W4L_TEST_DATABASE_URL")
        .ok()
        .and_then(|u| u.rsplit_once('/').map(|(server, _)| server.to_string()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// A running `work4life` process.
pub struct Process {
    /// The service(s) it hosts.
    pub target: String,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    /// How it was started, to start it again.
    env: HashMap<String, String>,
    extra: Vec<(String, String)>,
}

impl Process {
    /// Kills it (SIGKILL: no drain, as a crash or an OOM kill) and starts it again on the same
    /// address with the same configuration.
    pub async fn crash_and_restart(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        let listen = self.url.trim_start_matches("http://").to_string();
        let extra: Vec<(&str, String)> = self.extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut last = None;
        // The port may take a moment to be free again.
        for _ in 0..50 {
            match start_with(&self.target, &listen, &self.env, &extra).await {
                Ok(again) => {
                    *self = again;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("restart failed")))
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("pid")?;
        let status = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await?;
        anyhow::ensure!(status.success(), "kill failed");
        Ok(tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.context("exit in time")??)
    }
}

/// The environment of a suite process.
pub fn base_env(database_url: &str) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("W4L_DATABASE_URL".into(), database_url.into());
    env.insert("W4L_REDIS_URL".into(), std::env::var("W4L_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()));
    env.insert("W4L_SHUTDOWN_DELAY_MS".into(), "200".into());
    env.insert("W4L_LOG".into(), "warn".into());
    env
}

/// Starts `work4life --target=<target> serve --migrate` and waits for its "serving" line.
pub async fn start(target: &str, listen: &str, env: &HashMap<String, String>) -> anyhow::Result<Process> {
    start_with(target, listen, env, &[]).await
}

/// [`start`] with extra environment variables.
pub async fn start_with(target: &str, listen: &str, env: &HashMap<String, String>, extra: &[(&str, String)]) -> anyhow::Result<Process> {
    let mut child = Command::new(binary()?)
        .args([&format!("--target={target}"), "serve", "--migrate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .env("W4L_LISTEN_ADDR", listen)
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("work4life serving") {
                return Ok::<_, anyhow::Error>(line);
            }
        }
        anyhow::bail!("work4life --target={target} exited before serving")
    })
    .await
    .context("serving in time")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = line.split(" on ").nth(1).and_then(|rest| rest.split_whitespace().next()).context("address in the serving line")?;
    Ok(Process {
        target: target.into(),
        url: format!("http://{addr}"),
        child,
        env: env.clone(),
        extra: extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect(),
    })
}

/// A new database name on the test server (`w4l_suite_<uuid>`; the binary creates it).
pub fn fresh_database_url() -> String {
    format!("{}/w4l_suite_{}", server_url(), uuid::Uuid::new_v4().simple())
}

/// Runs `work4life --target=all seed` on `database_url` with `extra` variables: migrations and
/// the reference and demo data (program, calls, budget, offices, templates).
pub async fn seed(database_url: &str, extra: &[(&str, String)]) -> anyhow::Result<String> {
    let out = Command::new(binary()?)
        .args(["--target=all", "seed"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(base_env(database_url))
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "seed failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The suite in one of its two modes.
pub struct Suite {
    /// The processes: one in all-in-one mode, five when split.
    pub processes: Vec<Process>,
    /// The suite's own database.
    pub database_url: String,
}

impl Suite {
    /// All five services in one process.
    pub async fn all_in_one() -> anyhow::Result<Self> {
        Self::all_in_one_on(fresh_database_url(), &[]).await
    }

    /// All five services in one process on `database_url`, with extra environment variables.
    pub async fn all_in_one_on(database_url: String, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let process = start_with("all", "127.0.0.1:0", &base_env(&database_url), extra).await?;
        Ok(Self { processes: vec![process], database_url })
    }

    /// Five processes, one per service, each told where the others are.
    pub async fn split() -> anyhow::Result<Self> {
        Self::split_on(fresh_database_url(), &[]).await
    }

    /// [`Suite::split`] on `database_url`, with extra environment variables for every process.
    pub async fn split_on(database_url: String, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut ports = Vec::new();
        for _ in SERVICES {
            // Reserve distinct free ports; each is released just before its process binds it.
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            ports.push((listener.local_addr()?.port(), listener));
        }
        let mut env = base_env(&database_url);
        for (service, (port, _)) in SERVICES.iter().zip(&ports) {
            env.insert(format!("W4L_{}_URL", service.to_uppercase()), format!("http://127.0.0.1:{port}"));
        }
        let mut processes = Vec::new();
        for (service, (port, listener)) in SERVICES.iter().zip(ports) {
            drop(listener);
            processes.push(start_with(service, &format!("127.0.0.1:{port}"), &env, extra).await?);
        }
        Ok(Self { processes, database_url })
    }

    /// The URL that serves `service`.
    pub fn url_of(&self, service: &str) -> &str {
        self.processes.iter().find(|p| p.target == "all" || p.target == service).map_or("", |p| p.url.as_str())
    }

    /// Stops every process gracefully; all must exit 0.
    pub async fn stop(self) -> anyhow::Result<()> {
        for process in self.processes {
            let target = process.target.clone();
            let status = process.stop().await?;
            anyhow::ensure!(status.success(), "{target} exited with {status}");
        }
        Ok(())
    }
}
