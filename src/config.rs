//! Configuration: every setting is an environment variable and a flag.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::graphql::SchemaLimits;
use crate::store::DbOptions;

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
    /// Address to listen on.
    #[arg(long, env = "EXECSTORE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// HS256 secret for bearer tokens; unset means open mode (everyone is admin).
    #[arg(long, env = "EXECSTORE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Allow open mode on a non-loopback address.
    #[arg(long, env = "EXECSTORE_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// Deepest selection set accepted.
    #[arg(long, env = "EXECSTORE_MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,
    /// Largest query complexity accepted (one per field).
    #[arg(long, env = "EXECSTORE_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "EXECSTORE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Most operations in one batch request.
    #[arg(long, env = "EXECSTORE_MAX_BATCH", default_value_t = 16)]
    pub max_batch: usize,
    /// Per-request time limit, in milliseconds.
    #[arg(long, env = "EXECSTORE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// PostgreSQL statement_timeout (SQLite: busy timeout), in milliseconds.
    #[arg(long, env = "EXECSTORE_STATEMENT_TIMEOUT_MS", default_value_t = 20_000)]
    pub statement_timeout_ms: u64,
    /// Most executions one request may load in all (trees, children,
    /// feeds, aliases together); a request over it gets BUDGET_EXCEEDED.
    #[arg(long, env = "EXECSTORE_MAX_NODES", default_value_t = 50_000)]
    pub max_nodes: i64,
    /// Answer plain tree requests (scalars and `children`) straight from the
    /// rows; off only to compare with the generic resolvers.
    #[arg(long, env = "EXECSTORE_TREE_FAST_PATH", default_value_t = true, action = ArgAction::Set)]
    pub tree_fast_path: bool,
    /// Database connections in the pool.
    #[arg(long, env = "EXECSTORE_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,
    /// Serve introspection queries.
    #[arg(long, env = "EXECSTORE_INTROSPECTION", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,
    /// Serve GraphiQL on GET /graphql.
    #[arg(long, env = "EXECSTORE_GRAPHIQL", default_value_t = true, action = ArgAction::Set)]
    pub graphiql: bool,
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
            ..DbOptions::default()
        }
    }

    pub fn schema_limits(&self) -> SchemaLimits {
        SchemaLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            introspection: self.introspection,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Open mode (no secret) is only for loopback unless explicitly allowed.
    pub fn check_bind(&self) -> Result<(), String> {
        if self.jwt_secret.is_none() && !self.bind.ip().is_loopback() && !self.insecure_open {
            return Err(format!(
                "refusing to serve without EXECSTORE_JWT_SECRET on non-loopback address {}: \
                 set a secret, or pass --insecure-open",
                self.bind
            ));
        }
        Ok(())
    }
}
