#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use execstore::config::{Cli, Command, LogFormat};
use execstore::store::{self, ExecutionStore};
use tracing_subscriber::EnvFilter;

// Large responses allocate and free many small values; mimalloc does that
// faster than glibc malloc and gives memory back instead of growing per-thread
// arenas (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Requests started so far (for `give_memory_back_when_idle`).
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// mimalloc purges freed memory lazily, on a thread's later allocations, so
/// a server that goes idle after a burst of large responses would keep its
/// peak RSS for good. Once no request has started for a second, a few rounds
/// of forced collects (one task per core, so they reach the runtime threads'
/// own caches too) hand that memory back to the OS.
/// Under load nothing happens: collecting then costs more than it saves
/// (measured: +20 % on an 11,111-node tree when collecting every second;
/// purging on every free, MIMALLOC_PURGE_DELAY=0, cost +50 %).
/// SQLite allocates through the C library's malloc (its page caches, the
/// rows its worker threads hand over), which keeps freed memory in one arena
/// per thread: `malloc_trim` gives that back too (a SQLite server held
/// 71 MB ten seconds after a 16-reader tree load without it).
async fn give_memory_back_when_idle() {
    use std::sync::atomic::Ordering;
    let mut seen = u64::MAX;
    let mut collects_left = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let started = REQUESTS.load(Ordering::Relaxed);
        if started != seen {
            seen = started;
            collects_left = 3;
        } else if collects_left > 0 {
            collects_left -= 1;
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            for _ in 0..threads {
                // SAFETY: mi_collect only frees mimalloc's own cached
                // memory; it is safe to call from any thread at any time.
                tokio::spawn(async { unsafe { libmimalloc_sys::mi_collect(true) } });
            }
            // SAFETY: malloc_trim only releases the C allocator's free memory.
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) });
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", execstore::graphql::sdl());
        return std::process::ExitCode::SUCCESS;
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.config.log_format {
        LogFormat::Text => logs.init(),
        // One object per line; a request's lines carry its span (method,
        // uri, request_id).
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    match serve(cli.config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: execstore::config::Config) -> Result<(), String> {
    config.check()?;
    if config.is_open() {
        tracing::warn!(
            "open mode: no EXECSTORE_JWT_SECRET or public key, every request is treated as admin"
        );
    }
    let db = store::connect(&config.database_url, &config.db_options())
        .await
        .map_err(|e| {
            let error = e.to_string();
            match execstore::config::database_open_hint(&config.database_url, &error) {
                Some(hint) => format!("cannot open the database: {error}. {hint}"),
                None => format!("cannot open the database: {error}"),
            }
        })?;
    let mut store = ExecutionStore::new(db).with_retry_policy(config.retry_policy());
    let standbys: Vec<String> = config
        .database_read_url
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if !standbys.is_empty() {
        if !config.database_url.starts_with("postgres") {
            return Err(
                "DATABASE_READ_URL names PostgreSQL standbys: DATABASE_URL must be PostgreSQL too"
                    .into(),
            );
        }
        let replicas =
            store::Standbys::connect(&standbys, &config.db_options(), config.max_replica_lag)
                .map_err(|e| format!("DATABASE_READ_URL: {e}"))?;
        tracing::info!(standbys = standbys.len(), "queries read from standbys");
        store = store.with_standbys(replicas);
    }
    store
        .relay_events_across_processes(&config.database_url)
        .await
        .map_err(|e| format!("cannot listen for other processes' events: {e}"))?;
    store.janitor().spawn(config.janitor());
    store.queue().start_due_timer();
    tokio::spawn(give_memory_back_when_idle());
    if let Some(addr) = config.metrics_bind {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
        tracing::info!("metrics on http://{addr}/metrics");
        let metrics = execstore::http::metrics_router(store.clone());
        tokio::spawn(async move { axum::serve(listener, metrics).await });
    }
    let app = execstore::http::router(store, &config)?.layer(axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            next.run(request).await
        },
    ));
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    // Listening for SIGTERM before saying we listen: a signal that comes
    // right after would otherwise meet the default action and kill the
    // process instead of draining it.
    let shutdown = shutdown_signal()?;
    tracing::info!("execstore listening on http://{}/graphql", config.bind);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("drained; bye");
    Ok(())
}

/// SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish. The
/// handlers are installed when this is called, not when the future is
/// first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| format!("cannot listen for {name}: {e}"))
    };
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown signal received, draining in-flight requests");
    })
}
