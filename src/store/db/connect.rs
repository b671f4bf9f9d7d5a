//! Opening the database: the URL, the pool, SQLite's pragmas, migrations.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

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
            .options([
                (
                    "statement_timeout",
                    format!("{}", statement_timeout.as_millis()),
                ),
                // No JIT compilation: the store's statements are short, but a
                // recursive walk is costed at millions of rows, and JIT then
                // spent ~140 ms compiling each cancel of a one-execution run
                // (100 runs timed out at once took 16 s).
                ("jit", "off".to_owned()),
            ])
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
