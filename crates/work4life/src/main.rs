//! `work4life`: the one binary of the suite.
//!
//! ```text
//! work4life --target=all serve [--migrate] [--seed]   run services (all, one, or a comma list)
//! work4life --target=grants migrate                   apply the migrations of the targets
//! work4life --target=all seed                         load reference and demo data
//! work4life bootstrap-admin --email admin@example.org create the first administrator
//! ```
//! Configuration comes from `W4L_*` variables (docs/configuration.md) and is validated before
//! anything connects or binds.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use work4life_platform::{
    config::PlatformConfig,
    host::{self, HostOptions, ServiceDefinition},
    telemetry::TelemetryGuard,
};

/// Every service the binary can run, in dependency order (identity first: others verify its tokens).
const ALL: [ServiceDefinition; 5] = [
    work4life_identity::SERVICE,
    work4life_intake::SERVICE,
    work4life_grants::SERVICE,
    work4life_coaching::SERVICE,
    work4life_notifications::SERVICE,
];

#[derive(Parser)]
#[command(name = "work4life", version, about = "work4life services: identity, intake, grants, coaching, notifications")]
struct Cli {
    /// Services to act on: `all`, one name, or a comma-separated list.
    #[arg(long, global = true, default_value = "all", env = "W4L_TARGET")]
    target: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the targets on W4L_LISTEN_ADDR until SIGTERM or Ctrl-C.
    Serve {
        /// Apply migrations first (local runs; Kubernetes runs `migrate` as a Job).
        #[arg(long)]
        migrate: bool,
        /// Load reference and demo data first (implies --migrate).
        #[arg(long)]
        seed: bool,
    },
    /// Apply the targets' migrations and exit (the Helm pre-install/pre-upgrade Job).
    Migrate,
    /// Load reference and demo data and exit; idempotent.
    Seed,
    /// Create the first administrator of a new deployment and print its generated password
    /// once; refused when an administrator exists.
    BootstrapAdmin {
        /// The administrator's email address (the login).
        #[arg(long)]
        email: String,
    },
}

fn select(target: &str) -> Result<Vec<ServiceDefinition>, String> {
    if target.trim() == "all" {
        return Ok(ALL.to_vec());
    }
    let mut chosen = Vec::new();
    for name in target.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(service) = ALL.iter().find(|s| s.name == name) else {
            let names: Vec<_> = ALL.iter().map(|s| s.name).collect();
            return Err(format!("unknown target {name:?}: expected all or a comma list of {}", names.join(", ")));
        };
        if !chosen.iter().any(|s: &ServiceDefinition| s.name == name) {
            chosen.push(*service);
        }
    }
    if chosen.is_empty() {
        return Err("--target names no service".into());
    }
    Ok(chosen)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let services = match select(&cli.target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("work4life: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match PlatformConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("work4life: {e}");
            return ExitCode::from(2);
        }
    };
    // Service-owned settings are checked here too, before anything binds.
    if services.iter().any(|s| s.name == work4life_notifications::SERVICE.name)
        && let Err(e) = work4life_notifications::settings::Settings::from_source(config.vars.as_ref())
    {
        eprintln!("work4life: {e}");
        return ExitCode::from(2);
    }
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("work4life-{}", cli.target.replace(',', "-")));
    let telemetry = match work4life_platform::telemetry::init(&name, &config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("work4life: telemetry: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = run(cli.command, config, services, &telemetry).await;
    telemetry.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "work4life failed");
            eprintln!("work4life: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: PlatformConfig, services: Vec<ServiceDefinition>, telemetry: &TelemetryGuard) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            host::connect_pools(&config, &services, true).await?;
            println!("migrations applied: {}", names(&services));
            Ok(())
        }
        Command::Seed => seed(&config, &services).await,
        Command::BootstrapAdmin { email } => {
            let pools = host::connect_pools(&config, &[work4life_identity::SERVICE], true).await?;
            let password = work4life_identity::bootstrap::bootstrap_admin(&pools[0], &email).await?;
            println!("administrator created: {} / {password}  (shown once: keep it, then change it)", email.trim().to_lowercase());
            Ok(())
        }
        Command::Serve { migrate, seed: with_seed } => {
            if with_seed {
                seed(&config, &services).await?;
            }
            let metrics_addr = config.metrics_addr;
            let running =
                host::start(HostOptions { config, services: services.clone(), key_source: None, migrate: migrate || with_seed }).await?;
            if let (Some(addr), Some(registry)) = (metrics_addr, telemetry.prometheus_registry()) {
                let listener =
                    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
                println!("metrics on http://{}/metrics", listener.local_addr()?);
                tokio::spawn(work4life_platform::telemetry::serve_metrics(listener, registry, running.shutdown.clone()));
            }
            println!(
                "work4life serving {} on {} (gRPC, reflection on; try: buf curl --protocol grpc --http2-prior-knowledge --list-methods http://{})",
                names(&services),
                running.addr,
                running.addr
            );
            shutdown_signal().await;
            running.shutdown.cancel();
            running.done.await??;
            Ok(())
        }
    }
}

async fn seed(config: &PlatformConfig, services: &[ServiceDefinition]) -> anyhow::Result<()> {
    let pools = host::connect_pools(config, services, true).await?;
    for (service, pool) in services.iter().zip(&pools) {
        if let Some(seed) = service.seed {
            for line in seed(pool).await? {
                println!("seed: {line}");
            }
        }
    }
    Ok(())
}

fn names(services: &[ServiceDefinition]) -> String {
    services.iter().map(|s| s.name).collect::<Vec<_>>().join(",")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::select;

    #[test]
    fn targets_parse() {
        assert_eq!(select("all").expect("all").len(), 5);
        let some = select("grants, identity,grants").expect("list");
        assert_eq!(some.iter().map(|s| s.name).collect::<Vec<_>>(), ["grants", "identity"]);
        assert!(select("billing").expect_err("unknown").contains("billing"));
        assert!(select(",").is_err());
    }
}
