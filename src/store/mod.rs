//! The execution store: every operation of the seed `PostgresExecutionStore`,
//! over one SeaORM `DatabaseConnection`, on SQLite or PostgreSQL.
//!
//! Backend differences live here and nowhere else. Timestamps are taken by
//! the server (never the database's `now()`), truncated to microseconds, and
//! bound as parameters: that keeps SQLite's text timestamps and PostgreSQL's
//! `timestamptz` ordered the same way and lets one SQL text serve both.

mod batches;
mod claims;
pub mod cursor;
mod error;
mod event_log;
pub mod events;
mod executions;
mod feeds;
mod flows;
mod group_commit;
mod janitor;
mod recovery;
mod replicas;
mod retention;
mod rows;
mod sql;
mod stats;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};

use group_commit::{BoxFuture, GroupCommit, Writer};

pub use batches::{ClaimExtension, FinishOutcome, MAX_BATCH};
pub use claims::{ClaimOutcome, ClaimRejection, Finish};
pub use cursor::Cursor;
pub use error::{StoreError, StoreResult};
pub use events::{EventBus, EventKind, EventLogStats, LoggedEvent, Position};
pub use executions::{CreateExecution, StatusUpdate};
pub use feeds::{
    tree_levels, ChildWindow, ExecutionStats, Page, RootExecution, RootFilter, TreeNode,
};
pub use flows::Flow;
pub use group_commit::{GroupCommitStats, MAX_GROUP};
pub use janitor::{JanitorReport, JanitorSettings, PRUNE_BATCH, RUNS_BATCH};
pub use recovery::NewRecovery;
pub use replicas::{decode_token, encode_token, ReadRoute, Standbys};
pub use retention::RunsDeleted;
pub use rows::Columns;
pub use stats::{PoolStats, QueueDepth};

pub use entity::execution::Model as Execution;
pub use entity::execution_claim::Model as Claim;
pub use entity::execution_recovery::Model as Recovery;
pub use entity::{ClaimStatus, ExecutionStatus};

/// Whose executions a caller may see. A `user` token sees only its own; the
/// filter is part of every query's WHERE clause, never applied afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Owner(String),
}

impl Scope {
    pub fn owner(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Owner(owner) => Some(owner),
        }
    }
}

/// Bounds fixed by the contract.
pub mod limits {
    pub const MAX_ID_BYTES: usize = 255;
    pub const MAX_TIMEOUT_MS: i64 = 86_400_000;
    pub const DEFAULT_PAGE: i64 = 50;
    pub const MAX_PAGE: i64 = 500;
    pub const MAX_CLAIM_BATCH: i64 = 100;
    pub const MAX_RECOVERY_LIMIT: i64 = 10_000;
    /// A failed execution is retried by recovery at most this many times.
    pub const MAX_RECOVERY_FAILURES: i32 = 5;
}

/// The defaults of the connection settings: `DbOptions::default()` and the
/// configuration's defaults (`EXECSTORE_POOL_SIZE`,
/// `EXECSTORE_STATEMENT_TIMEOUT_MS`) are these, so tests, benchmarks and the
/// server run with the same values.
pub mod defaults {
    pub const POOL_SIZE: u32 = 16;
    pub const STATEMENT_TIMEOUT_MS: u64 = 20_000;
    pub const ACQUIRE_TIMEOUT_MS: u64 = 10_000;
}

/// Connection settings that are not part of the URL.
#[derive(Clone, Debug)]
pub struct DbOptions {
    pub max_connections: u32,
    /// PostgreSQL `statement_timeout`; SQLite's busy timeout.
    pub statement_timeout: Duration,
    pub acquire_timeout: Duration,
    /// SQLite only: when a commit is on disk (see [`SqliteSync`]).
    pub sqlite_sync: SqliteSync,
}

/// SQLite's `synchronous` setting, in WAL mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// Every commit is synced to disk before it is acknowledged: nothing
    /// acknowledged is lost, not even on power loss or an OS crash.
    #[default]
    Full,
    /// Commits are synced at WAL checkpoints: a process crash loses nothing,
    /// power loss or an OS crash can lose the last acknowledged commits.
    Normal,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: defaults::POOL_SIZE,
            statement_timeout: Duration::from_millis(defaults::STATEMENT_TIMEOUT_MS),
            acquire_timeout: Duration::from_millis(defaults::ACQUIRE_TIMEOUT_MS),
            sqlite_sync: SqliteSync::Full,
        }
    }
}

/// Opens the database named by `url` (creating a SQLite file when the URL
/// says `mode=rwc`) and applies pending migrations.
///
/// Migrations run on a connection of their own, closed before the serving
/// pool opens: a pooled connection that was open while a migration altered
/// a table could prepare `SELECT *`/`RETURNING *` against its stale schema
/// and then read rows with one column more than it expects (SQLite), or get
/// "cached plan must not change result type" (PostgreSQL).
pub async fn connect(url: &str, options: &DbOptions) -> Result<DatabaseConnection, DbErr> {
    let migrator = open(
        url,
        &DbOptions {
            max_connections: 1,
            ..options.clone()
        },
    )
    .await?;
    migrate(&migrator).await?;
    migrator.close().await?;
    open(url, options).await
}

/// Rows a SQLite read may queue ahead of its reader (see `open`).
const SQLITE_ROW_BUFFER: usize = 1024;

async fn open(url: &str, options: &DbOptions) -> Result<DatabaseConnection, DbErr> {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sea_orm::sqlx::ConnectOptions as _;
    use sea_orm::{SqlxPostgresConnector, SqlxSqliteConnector};
    let statement_timeout = options.statement_timeout;
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let connect = url
            .parse::<PgConnectOptions>()
            .map_err(connection_error)?
            .options([(
                "statement_timeout",
                format!("{}", statement_timeout.as_millis()),
            )])
            .disable_statement_logging();
        let pool = pool_options(options)
            .connect_with(connect)
            .await
            .map_err(connection_error)?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    } else if url.starts_with("sqlite:") {
        let synchronous = match options.sqlite_sync {
            SqliteSync::Full => SqliteSynchronous::Full,
            SqliteSync::Normal => SqliteSynchronous::Normal,
        };
        // WAL lets readers run beside the one writer; busy_timeout makes a
        // writer wait for the lock instead of failing with "database is locked".
        // synchronous=FULL by default: an acknowledged write survives power
        // loss too; NORMAL (a choice) only survives a process crash.
        let connect = url
            .parse::<SqliteConnectOptions>()
            .map_err(connection_error)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(statement_timeout)
            .foreign_keys(true)
            // Rows cross from SQLite's worker thread to the reading task one
            // by one; with sqlx's default of 50 in flight the worker stalls
            // and is woken for nearly every row of a large level (a third of
            // a tree read's time went to context switches).
            .row_buffer_size(SQLITE_ROW_BUFFER)
            .disable_statement_logging();
        let pool = pool_options(options)
            .connect_with(connect)
            .await
            .map_err(connection_error)?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else {
        Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(
            "DATABASE_URL must start with sqlite: or postgres:".into(),
        )))
    }
}

/// A connection that went back to the pool less than this long ago is
/// handed out without a test.
const TEST_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

fn pool_options<DB: sea_orm::sqlx::Database>(
    options: &DbOptions,
) -> sea_orm::sqlx::pool::PoolOptions<DB> {
    use sea_orm::sqlx::Connection as _;
    sea_orm::sqlx::pool::PoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(1)
        .acquire_timeout(options.acquire_timeout)
        // sqlx tests every connection it lends (a round trip to the database
        // before each statement: measured as a third of a claim's cost) and
        // again when it comes back. A connection just given back has just
        // been tested; only one idle for a while is tested on the way out
        // (a database restart leaves stale connections behind), and a
        // failed test discards it quietly.
        .test_before_acquire(false)
        .before_acquire(|connection: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for < TEST_WHEN_IDLE_FOR {
                    return Ok(true);
                }
                Ok(connection.ping().await.is_ok())
            })
        })
}

fn connection_error(err: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err))
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None).await
}

/// The current time as the store records it: UTC, microsecond precision
/// (PostgreSQL's), so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// The execution store. Cheap to clone: the connections are pools.
#[derive(Clone)]
pub struct ExecutionStore {
    /// The primary: every write, the queue, the event log.
    db: DatabaseConnection,
    /// Where this store's queries read (trees, feeds, roots, stats): the
    /// primary, or a standby chosen for one request (`reading_from`).
    reads: DatabaseConnection,
    events: EventBus,
    standbys: Option<Standbys>,
    /// SQLite: the one writer task every write goes through (started on
    /// the first write; see `group_commit`).
    group: Arc<OnceLock<GroupCommit>>,
    /// Where each flow's queue begins, as far as this process knows
    /// (`claims::QueueHeads`).
    heads: Arc<claims::QueueHeads>,
}

impl ExecutionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_events(db, EventBus::new())
    }

    pub fn with_events(db: DatabaseConnection, events: EventBus) -> Self {
        Self {
            reads: db.clone(),
            db,
            events,
            standbys: None,
            group: Arc::new(OnceLock::new()),
            heads: Arc::default(),
        }
    }

    /// Adds PostgreSQL standbys that queries may read from (see
    /// `replicas`); starts watching their lag.
    pub fn with_standbys(mut self, standbys: Standbys) -> Self {
        standbys.watch(self.db.clone());
        self.standbys = Some(standbys);
        self
    }

    pub fn standbys(&self) -> Option<&Standbys> {
        self.standbys.as_ref()
    }

    /// The same store, its queries reading from `connection` (a standby
    /// chosen for one request); writes still go to the primary.
    pub fn reading_from(&self, connection: DatabaseConnection) -> Self {
        Self {
            reads: connection,
            ..self.clone()
        }
    }

    /// The same store, trusting a queue's head for `ttl` after a pull from
    /// its start (`claims::QueueHeads`) instead of 250 ms; with heads of its
    /// own. For tests that must not depend on how fast they run.
    #[doc(hidden)]
    pub fn with_queue_head_ttl(&self, ttl: std::time::Duration) -> Self {
        Self {
            heads: Arc::new(claims::QueueHeads::with_ttl(ttl)),
            ..self.clone()
        }
    }

    /// The same store reading from the primary.
    pub fn on_primary(&self) -> Self {
        self.reading_from(self.db.clone())
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Runs one write: on PostgreSQL on the pool, on SQLite in the next
    /// commit group (answered once that group is on disk). A write of
    /// several statements that must be atomic begins a transaction on its
    /// `Writer` (a savepoint inside the group on SQLite).
    pub(crate) async fn write<T, F>(&self, write: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w Writer<'w>) -> BoxFuture<'w, StoreResult<T>> + Send + 'static,
    {
        match self.backend() {
            DbBackend::Postgres => write(&Writer::Pool(&self.db)).await,
            _ => {
                self.group
                    .get_or_init(|| GroupCommit::start(self.db.clone()))
                    .run(write)
                    .await
            }
        }
    }

    /// SQLite: how many commit groups were written and how many writes they
    /// held (`None` on PostgreSQL, or before the first write).
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        self.group.get().map(|group| group.stats().read())
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }
}

/// Validation shared by the store's operations; errors name the field.
pub(crate) mod validate {
    use super::{limits, StoreError, StoreResult};

    pub fn id(field: &'static str, value: &str) -> StoreResult<()> {
        if value.is_empty() {
            return Err(StoreError::invalid(field, "must not be empty"));
        }
        if value.len() > limits::MAX_ID_BYTES {
            return Err(StoreError::invalid(
                field,
                format!("must be at most {} bytes", limits::MAX_ID_BYTES),
            ));
        }
        Ok(())
    }

    pub fn timeout_ms(field: &'static str, value: i64) -> StoreResult<()> {
        if !(1..=limits::MAX_TIMEOUT_MS).contains(&value) {
            return Err(StoreError::invalid(
                field,
                format!("must be between 1 and {}", limits::MAX_TIMEOUT_MS),
            ));
        }
        Ok(())
    }

    pub fn non_negative(field: &'static str, value: i32) -> StoreResult<()> {
        if value < 0 {
            return Err(StoreError::invalid(field, "must be at least 0"));
        }
        Ok(())
    }

    pub fn page_size(value: Option<i64>) -> StoreResult<i64> {
        let first = value.unwrap_or(limits::DEFAULT_PAGE);
        if !(0..=limits::MAX_PAGE).contains(&first) {
            return Err(StoreError::invalid(
                "first",
                format!("must be between 0 and {}", limits::MAX_PAGE),
            ));
        }
        Ok(first)
    }

    pub fn range(field: &'static str, value: i64, min: i64, max: i64) -> StoreResult<()> {
        if !(min..=max).contains(&value) {
            return Err(StoreError::invalid(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(())
    }
}
