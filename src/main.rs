#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use execstore::config::{Cli, Command};
use execstore::store::{self, ExecutionStore};
use tracing_subscriber::EnvFilter;

// Large responses allocate and free many small values; mimalloc does that
// faster than glibc malloc and gives memory back instead of growing per-thread
// arenas (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", execstore::graphql::sdl());
        return std::process::ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match serve(cli.config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: execstore::config::Config) -> Result<(), String> {
    config.check_bind()?;
    if config.jwt_secret.is_none() {
        tracing::warn!("open mode: no EXECSTORE_JWT_SECRET, every request is treated as admin");
    }
    let db = store::connect(&config.database_url, &config.db_options())
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let store = ExecutionStore::new(db);
    store
        .relay_events_across_processes(&config.database_url)
        .await
        .map_err(|e| format!("cannot listen for other processes' events: {e}"))?;
    let app = execstore::http::router(store, &config);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    tracing::info!("execstore listening on http://{}/graphql", config.bind);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("drained; bye");
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, draining in-flight requests");
}
