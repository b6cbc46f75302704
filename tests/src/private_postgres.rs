//! A PostgreSQL server of the test's own (initdb in a temporary directory, on a free loopback
//! port, trust authentication), for the faults that cannot touch the machine's shared server:
//! restarting PostgreSQL under load. Run as the `postgres` system user (initdb refuses root).

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::Context as _;

/// The server binaries (Debian's layout, PostgreSQL 15 first).
fn bin(name: &str) -> PathBuf {
    for version in ["15", "16", "17", "14"] {
        let path = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{name}"));
        if path.exists() {
            return path;
        }
    }
    PathBuf::from(name)
}

fn as_postgres(program: PathBuf) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

/// A running private server; stopped and removed on drop.
pub struct PrivatePostgres {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePostgres {
    /// Creates and starts one.
    pub fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("w4l-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Command::new("chown").arg("postgres:postgres").arg(&dir).status()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = dir.join("data");
        let out = as_postgres(bin("initdb"))
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .context("initdb")?;
        anyhow::ensure!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let server = Self { dir, port };
        server.pg_ctl(&["start", "-w"])?;
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>` (no database).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let out = as_postgres(bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .args(args)
            .output()?;
        anyhow::ensure!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server is back when this returns.
    pub fn restart(&self) -> anyhow::Result<Duration> {
        let started = std::time::Instant::now();
        self.pg_ctl(&["restart", "-m", "fast", "-w"])?;
        Ok(started.elapsed())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
