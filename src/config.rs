//! Configuration: every setting is an environment variable and a flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::auth::{Authenticator, KeySources};
use crate::graphql::persisted::PersistedOperations;
use crate::graphql::SchemaLimits;
use crate::store::{DbOptions, JanitorSettings, RetryPolicy, SqliteSync};

#[derive(Parser, Debug)]
#[command(name = "execstore", version, about = "GraphQL execution store")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print the GraphQL SDL and exit.
    Schema,
}

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// sqlite://FILE?mode=rwc (created and migrated on first start) or postgres://…
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://execstore.db?mode=rwc"
    )]
    pub database_url: String,
    /// PostgreSQL standbys (streaming replicas) that queries read from,
    /// comma-separated; writes, claims, the queue and events stay on
    /// DATABASE_URL.
    #[arg(long, env = "DATABASE_READ_URL", value_delimiter = ',')]
    pub database_read_url: Vec<String>,
    /// A standby whose replay is further behind the primary than this is
    /// not read from until it catches up. A duration: `500ms`, `2s`.
    #[arg(long, env = "EXECSTORE_MAX_REPLICA_LAG", default_value = "2s", value_parser = humantime::parse_duration)]
    pub max_replica_lag: Duration,
    /// Address to listen on.
    #[arg(long, env = "EXECSTORE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// HS256 secret for bearer tokens; unset means open mode (everyone is admin).
    #[arg(long, env = "EXECSTORE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file with the public key that verifies RS256 (RSA key) or ES256
    /// (P-256 key) tokens, as an identity provider signs them.
    #[arg(long, env = "EXECSTORE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file (`{"keys": [...]}`) with RS256/ES256 public keys; a token's
    /// `kid` picks the key.
    #[arg(long, env = "EXECSTORE_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// When set, a token's `iss` must equal it.
    #[arg(long, env = "EXECSTORE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// When set, a token's `aud` must contain it.
    #[arg(long, env = "EXECSTORE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Allow open mode on a non-loopback address.
    #[arg(long, env = "EXECSTORE_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// Deepest selection set accepted.
    #[arg(long, env = "EXECSTORE_MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,
    /// Largest query complexity accepted (one per field).
    #[arg(long, env = "EXECSTORE_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,
    /// Most directives on one field. Checked right after parsing, before
    /// validation: a field carrying thousands of `@include` is refused
    /// before it costs validation's CPU.
    #[arg(long, env = "EXECSTORE_MAX_DIRECTIVES", default_value_t = 16)]
    pub max_directives: usize,
    /// Allow-list mode: a `.graphql` file, or a folder of them, holding the
    /// only documents the server runs (others: `OPERATION_NOT_ALLOWED`).
    #[arg(long, env = "EXECSTORE_OPERATIONS")]
    pub operations: Option<PathBuf>,
    /// In allow-list mode, let admin tokens run any document (GraphiQL,
    /// the explorer, an operator's own queries).
    #[arg(long, env = "EXECSTORE_OPERATIONS_ADMINS_RUN_ANY", default_value_t = false, action = ArgAction::Set)]
    pub operations_admins_run_any: bool,
    /// Largest request body, in bytes.
    #[arg(long, env = "EXECSTORE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most operations in one batch request.
    #[arg(long, env = "EXECSTORE_MAX_BATCH", default_value_t = 16)]
    pub max_batch: usize,
    /// The longest a `claimNextExecutions(waitMs:)` call may wait for work.
    /// Must be shorter than the request timeout (checked at start), so a
    /// waiting call answers, empty, before the request times out.
    #[arg(long, env = "EXECSTORE_MAX_WAIT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub max_wait: Duration,
    /// Per-request time limit, in milliseconds.
    #[arg(long, env = "EXECSTORE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// PostgreSQL statement_timeout (SQLite: busy timeout), in milliseconds.
    #[arg(long, env = "EXECSTORE_STATEMENT_TIMEOUT_MS", default_value_t = crate::store::defaults::STATEMENT_TIMEOUT_MS)]
    pub statement_timeout_ms: u64,
    /// Most executions one request may load in all (trees, children,
    /// feeds, aliases together); a request over it gets BUDGET_EXCEEDED.
    #[arg(long, env = "EXECSTORE_MAX_NODES", default_value_t = 50_000)]
    pub max_nodes: i64,
    /// Answer plain tree requests (scalars and `children`) straight from the
    /// rows; off only to compare with the generic resolvers.
    #[arg(long, env = "EXECSTORE_TREE_FAST_PATH", default_value_t = true, action = ArgAction::Set)]
    pub tree_fast_path: bool,
    /// SQLite durability: `full` syncs every commit (survives power loss);
    /// `normal` syncs at checkpoints (survives a crash of the process, may
    /// lose the last commits on power loss or an OS crash; faster writes).
    #[arg(long, env = "EXECSTORE_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
    /// Queries (trees, feeds, the explorer's reads) served at once; more
    /// wait their turn, so heavy readers cannot starve the workers'
    /// mutations, which never wait. 0: no bound. Default: one less than the
    /// cores (at least 1).
    #[arg(long, env = "EXECSTORE_CONCURRENT_READS")]
    pub concurrent_reads: Option<usize>,
    /// Database connections in the pool.
    #[arg(long, env = "EXECSTORE_POOL_SIZE", default_value_t = crate::store::defaults::POOL_SIZE)]
    pub pool_size: u32,
    /// Serve introspection queries.
    #[arg(long, env = "EXECSTORE_INTROSPECTION", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,
    /// Serve `GET /metrics` on this address (for example a private
    /// interface) instead of on the API's address.
    #[arg(long, env = "EXECSTORE_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Log lines as `text` or `json` (one JSON object per line).
    #[arg(long, env = "EXECSTORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long the event log keeps events: a subscriber may resume from a
    /// cursor this old (`executionEvents(after:)`); older ones get
    /// EVENTS_EXPIRED. A duration: `90m`, `24h`, `30d`.
    #[arg(long, env = "EXECSTORE_EVENT_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
    /// Delete whole finished runs (a terminal root finished longer ago than
    /// this, nothing in its tree still to do or claimed). Unset keeps every
    /// run. A duration: `30d`, `90d`.
    #[arg(long, env = "EXECSTORE_RUN_RETENTION", value_parser = humantime::parse_duration)]
    pub run_retention: Option<Duration>,
    /// How often the janitor prunes what is past its retention.
    #[arg(long, env = "EXECSTORE_JANITOR_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub janitor_interval: Duration,
    /// Serve GraphiQL on GET /graphql.
    #[arg(long, env = "EXECSTORE_GRAPHIQL", default_value_t = true, action = ArgAction::Set)]
    pub graphiql: bool,
    /// A retry's wait after the first failure (each further one waits
    /// `EXECSTORE_RETRY_FACTOR` times longer; ±25 % jitter).
    #[arg(long, env = "EXECSTORE_RETRY_BACKOFF", default_value = "1m", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,
    /// The longest wait of a retry.
    #[arg(long, env = "EXECSTORE_RETRY_MAX_BACKOFF", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retry_max_backoff: Duration,
    /// How many times longer each retry waits than the one before.
    #[arg(long, env = "EXECSTORE_RETRY_FACTOR", default_value_t = 2.0)]
    pub retry_factor: f64,
    /// Attempts an execution gets in all: the failure that reaches this
    /// count ends it FAILED.
    #[arg(long, env = "EXECSTORE_RETRY_MAX_ATTEMPTS", default_value_t = 5)]
    pub retry_max_attempts: i32,
}

/// What to tell someone whose SQLite file could not be opened: SQLite only
/// creates a missing file when the URL asks for it (`?mode=rwc`).
pub fn database_open_hint(url: &str, error: &str) -> Option<&'static str> {
    let sqlite = url.starts_with("sqlite:");
    (sqlite && !url.contains("mode=rwc") && error.contains("unable to open database file"))
        .then_some(
            "SQLite creates the file only when asked: add `?mode=rwc` to DATABASE_URL \
         (sqlite:///path/file.db?mode=rwc), or create the file first",
        )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The defaults, as if started with no flags and no environment.
    pub fn defaults() -> Self {
        Cli::parse_from(["execstore"]).config
    }

    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            max_connections: self.pool_size.max(1),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            sqlite_sync: self.sqlite_synchronous,
            ..DbOptions::default()
        }
    }

    pub fn schema_limits(&self) -> SchemaLimits {
        SchemaLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_directives: self.max_directives,
            introspection: self.introspection,
            max_wait_ms: i64::try_from(self.max_wait.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Persisted operations: the APQ cache, and the allow list when
    /// `EXECSTORE_OPERATIONS` names one (fails when it cannot be read).
    pub fn persisted_operations(&self) -> Result<PersistedOperations, String> {
        match &self.operations {
            None => Ok(PersistedOperations::default()),
            Some(path) => PersistedOperations::allow_only(path, self.operations_admins_run_any),
        }
    }

    /// The retry policy (`EXECSTORE_RETRY_*`).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.retry_max_attempts,
            backoff: self.retry_backoff,
            factor: self.retry_factor,
            max_backoff: self.retry_max_backoff,
        }
    }

    pub fn janitor(&self) -> JanitorSettings {
        JanitorSettings {
            interval: self.janitor_interval.max(Duration::from_millis(100)),
            event_retention: self.event_retention,
            run_retention: self.run_retention,
        }
    }

    /// The read gate's size (0: unbounded).
    pub fn concurrent_reads(&self) -> usize {
        self.concurrent_reads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            cores.saturating_sub(1).max(1)
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// No secret and no public key: every request is treated as admin.
    pub fn is_open(&self) -> bool {
        self.jwt_secret.is_none()
            && self.jwt_public_key_file.is_none()
            && self.jwt_jwks_file.is_none()
    }

    /// The token verifier, with the key files read (or why they cannot be).
    pub fn authenticator(&self) -> Result<Authenticator, String> {
        let read = |path: &Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>, String> {
            path.as_ref()
                .map(|p| {
                    std::fs::read(p)
                        .map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
                })
                .transpose()
        };
        let pem = read(&self.jwt_public_key_file, "public key file")?;
        let jwks = read(&self.jwt_jwks_file, "JWKS file")?;
        Authenticator::from_sources(&KeySources {
            secret: self.jwt_secret.as_deref(),
            public_key_pem: pem.as_deref(),
            jwks_json: jwks.as_deref(),
            issuer: self.jwt_issuer.as_deref(),
            audience: self.jwt_audience.as_deref(),
        })
    }

    /// Settings that cannot work together stop the start with the reason.
    pub fn check(&self) -> Result<(), String> {
        if self.max_wait >= self.request_timeout() {
            return Err(format!(
                "EXECSTORE_MAX_WAIT ({}) must be shorter than the request timeout \
                 (EXECSTORE_REQUEST_TIMEOUT_MS = {} ms): a waiting claimNextExecutions would time out \
                 instead of answering",
                humantime::format_duration(self.max_wait),
                self.request_timeout_ms
            ));
        }
        if self.retry_max_attempts < 1 {
            return Err("EXECSTORE_RETRY_MAX_ATTEMPTS must be at least 1".into());
        }
        if !(self.retry_factor.is_finite() && self.retry_factor >= 1.0) {
            return Err("EXECSTORE_RETRY_FACTOR must be a number of at least 1".into());
        }
        self.check_bind()
    }

    /// Open mode (no key) is only for loopback unless explicitly allowed.
    pub fn check_bind(&self) -> Result<(), String> {
        if self.is_open() && !self.bind.ip().is_loopback() && !self.insecure_open {
            return Err(format!(
                "refusing to serve without EXECSTORE_JWT_SECRET (or a public key) on non-loopback address {}: \
                 set a secret or a key, or pass --insecure-open",
                self.bind
            ));
        }
        Ok(())
    }
}
