//! The one database handle every part of the store works through: the
//! primary, the connection its reads go to (the primary, or a standby chosen
//! for one request), the SQLite writer, the wake-ups, the queue heads and the
//! statement table chosen at connect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult,
    IsolationLevel, QueryResult, Statement, TransactionTrait, Value,
};

use super::bus::EventBus;
use super::effects::Effects;
use super::error::StoreResult;
use super::group_commit::{in_transaction, BoxFuture, GroupCommit, Writer};
use super::heads::QueueHeads;
use super::replicas::{ReadRoute, Standbys};
use super::retry::RetryPolicy;
use super::run;
use super::slots::{self, Slots};
use crate::store::sql::{Statements, POSTGRES, SQLITE};
use entity::execution::Model as Execution;

/// Cheap to clone: the connections are pools, the rest is shared.
#[derive(Clone)]
pub struct Db {
    /// Every write, the queue, the event log.
    primary: DatabaseConnection,
    /// Where reads go: the primary, or a standby chosen for one request.
    reads: DatabaseConnection,
    bus: EventBus,
    standbys: Option<Standbys>,
    /// SQLite: the one writer task every write goes through (started on
    /// the first write; see `group_commit`).
    group: Arc<OnceLock<GroupCommit>>,
    heads: Arc<QueueHeads>,
    sql: &'static Statements,
    retry: Arc<RetryPolicy>,
    /// Set while reads go to a standby for one request.
    standby: Option<Arc<StandbyRead>>,
    /// Admissions that failed after their write committed, for the
    /// janitor's next round (`db::slots`).
    pub(super) unadmitted: Arc<std::sync::Mutex<Slots>>,
}

/// One request's reads on a standby, and whether one of them failed there.
struct StandbyRead {
    route: ReadRoute,
    failed: AtomicBool,
}

/// PostgreSQL's pool statistics or SQLite's.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    /// Connections open now.
    pub size: u32,
    /// Of those, the ones not lent out.
    pub idle: u32,
    pub max: u32,
}

/// A column of `Db::insert_arrays`: one value per row.
pub(crate) enum ArrayColumn<'a> {
    Text(Vec<&'a str>),
    NullableText(Vec<Option<&'a str>>),
    Int(Vec<i32>),
    BigInt(Vec<i64>),
    Bool(Vec<bool>),
    Json(Vec<Option<sqlx::types::Json<&'a serde_json::Value>>>),
    Time(DateTime<Utc>),
    NullableTimes(Vec<Option<DateTime<Utc>>>),
}

impl Db {
    pub fn new(primary: DatabaseConnection, bus: EventBus) -> Self {
        let sql = match primary.get_database_backend() {
            DbBackend::Postgres => &POSTGRES,
            _ => &SQLITE,
        };
        Self {
            reads: primary.clone(),
            primary,
            bus,
            standbys: None,
            group: Arc::new(OnceLock::new()),
            heads: Arc::default(),
            sql,
            retry: Arc::default(),
            unadmitted: Arc::default(),
            standby: None,
        }
    }

    /// The retry policy of this store's executions (see `retry`).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The same handle with another retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Arc::new(policy);
        self
    }

    /// This backend's statements.
    pub(crate) fn sql(&self) -> &'static Statements {
        self.sql
    }

    pub fn backend(&self) -> DbBackend {
        self.primary.get_database_backend()
    }

    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    pub(crate) fn heads(&self) -> &QueueHeads {
        &self.heads
    }

    pub fn standbys(&self) -> Option<&Standbys> {
        self.standbys.as_ref()
    }

    /// With PostgreSQL standbys that reads may go to; starts watching
    /// their lag.
    pub fn with_standbys(mut self, standbys: Standbys) -> Self {
        standbys.watch(self.primary.clone());
        self.standbys = Some(standbys);
        self
    }

    /// The same handle, its reads going to `connection` (the standby of
    /// `route`); writes still go to the primary.
    pub fn reading_from(&self, connection: DatabaseConnection, route: ReadRoute) -> Self {
        Self {
            reads: connection,
            standby: Some(Arc::new(StandbyRead {
                route,
                failed: AtomicBool::new(false),
            })),
            ..self.clone()
        }
    }

    /// The same handle reading from the primary.
    pub fn on_primary(&self) -> Self {
        Self {
            reads: self.primary.clone(),
            standby: None,
            ..self.clone()
        }
    }

    /// The standby this handle reads from, and whether a read failed there.
    pub fn standby_read(&self) -> Option<(&ReadRoute, bool)> {
        self.standby
            .as_deref()
            .map(|s| (&s.route, s.failed.load(Ordering::SeqCst)))
    }

    /// The same handle with queue heads of its own, trusted for `ttl`.
    pub(crate) fn with_queue_head_ttl(&self, ttl: std::time::Duration) -> Self {
        Self {
            heads: Arc::new(QueueHeads::with_ttl(ttl)),
            ..self.clone()
        }
    }

    /// `text` with its parameters, for this backend.
    pub(crate) fn stmt(&self, text: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        run::statement(self.backend(), text, values)
    }

    /// A failed read on a standby marks it (the request is answered again
    /// from the primary; see `ExecutionStore::route_reads`).
    fn noted<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if let (Err(_), Some(standby)) = (&result, &self.standby) {
            standby.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    /// The executions a read returns (on the read connection).
    pub(crate) async fn read_executions<T: From<Execution>>(
        &self,
        statement: Statement,
    ) -> StoreResult<Vec<T>> {
        self.noted(run::executions(&self.reads, statement).await)
    }

    pub(crate) async fn read_execution(
        &self,
        statement: Statement,
    ) -> StoreResult<Option<Execution>> {
        self.noted(run::execution(&self.reads, statement).await)
    }

    pub(crate) async fn read_models<M: FromQueryResult>(
        &self,
        statement: Statement,
    ) -> StoreResult<Vec<M>> {
        self.noted(run::models(&self.reads, statement).await)
    }

    pub(crate) async fn read_model<M: FromQueryResult>(
        &self,
        statement: Statement,
    ) -> StoreResult<Option<M>> {
        self.noted(run::model(&self.reads, statement).await)
    }

    /// Runs one write, then wakes whom its effects concern. On PostgreSQL
    /// it runs on the pool; on SQLite in the next commit group, answered
    /// once that group is on disk. A write of several statements that must
    /// be atomic runs them as steps (`run::steps`) or in a transaction of
    /// its `Writer` (a savepoint inside the group on SQLite).
    pub(crate) async fn write<T, F>(&self, write: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w Writer<'w>) -> BoxFuture<'w, StoreResult<(T, Effects)>>
            + Send
            + 'static,
    {
        let (value, slots) = self.write_then_announce(write).await?;
        self.admit_after(slots).await;
        Ok(value)
    }

    /// `write` but for an admission its effects ask for on PostgreSQL, which
    /// it returns (an admission is itself a write of this kind).
    pub(super) async fn write_then_announce<T, F>(&self, write: F) -> StoreResult<(T, Slots)>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w Writer<'w>) -> BoxFuture<'w, StoreResult<(T, Effects)>>
            + Send
            + 'static,
    {
        let (value, mut effects) = match self.backend() {
            DbBackend::Postgres => write(&Writer::Pool(&self.primary)).await?,
            backend => {
                // The admission a write asks for runs in the same commit
                // group, after it (one writer: nothing comes between).
                let sql = self.sql;
                let unadmitted = self.unadmitted.clone();
                self.group
                    .get_or_init(|| GroupCommit::start(self.primary.clone()))
                    .run(move |w| {
                        Box::pin(async move {
                            let (value, mut effects) = write(w).await?;
                            let slots = effects.take_admission();
                            if slots.is_empty() {
                                return Ok((value, effects));
                            }
                            let again = slots.clone();
                            let admission = w.transaction(move |txn| {
                                Box::pin(slots::admit_in(txn, sql, backend, slots))
                            });
                            match admission.await {
                                Ok(admitted) => {
                                    effects = effects.and(slots::admitted_effects(&admitted))
                                }
                                Err(err) => slots::admission_failed(&unadmitted, &err, again),
                            }
                            Ok((value, effects))
                        })
                    })
                    .await?
            }
        };
        // On PostgreSQL, after the commit (see `db::slots`).
        let slots = effects.take_admission();
        self.announce(effects);
        Ok((value, slots))
    }

    /// Wakes whom a committed write's effects concern (`Effects::apply`);
    /// `write` does it for every write it runs.
    pub(crate) fn announce(&self, effects: Effects) {
        effects.apply(&self.bus, &self.heads);
    }

    /// Runs `work` in a transaction of its own as the one process of the
    /// database doing this maintenance: on PostgreSQL at `isolation`,
    /// holding the advisory lock `lock` (a `SELECT
    /// pg_try_advisory_xact_lock(…) AS locked`), or `None` without running
    /// it while another process holds it; on SQLite as a write of the
    /// commit groups (one writer: it is always its turn, under any write
    /// load). Maintenance writes no events.
    pub(crate) async fn maintenance<T, F>(
        &self,
        lock: Option<&'static str>,
        isolation: Option<IsolationLevel>,
        work: F,
    ) -> StoreResult<Option<T>>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, StoreResult<T>>
            + Send
            + 'static,
    {
        match (self.backend(), lock) {
            (DbBackend::Postgres, Some(lock)) => {
                let txn = self.primary.begin_with_config(isolation, None).await?;
                match take_turn(txn, lock).await? {
                    Some(txn) => Ok(Some(in_transaction(txn, work).await?)),
                    None => Ok(None),
                }
            }
            _ => {
                self.write(move |w| {
                    Box::pin(async move { Ok((Some(w.transaction(work).await?), Effects::none())) })
                })
                .await
            }
        }
    }

    /// PostgreSQL: one INSERT of `text` whose parameters are arrays, one
    /// element per row (`insert_new.sql`): bound through the driver, which
    /// passes arrays as they are. Its error is the database's own, for the
    /// caller to read (a unique violation means "an id exists").
    pub(crate) async fn insert_arrays(
        &self,
        text: &str,
        columns: Vec<ArrayColumn<'_>>,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let DatabaseConnection::SqlxPostgresPoolConnection(_) = &self.primary else {
            return Err(DbErr::Custom("arrays are bound on PostgreSQL only".into()));
        };
        let mut query = sqlx::query(text);
        for column in columns {
            query = match column {
                ArrayColumn::Text(values) => query.bind(values),
                ArrayColumn::NullableText(values) => query.bind(values),
                ArrayColumn::Int(values) => query.bind(values),
                ArrayColumn::BigInt(values) => query.bind(values),
                ArrayColumn::Bool(values) => query.bind(values),
                ArrayColumn::Json(values) => query.bind(values),
                ArrayColumn::Time(value) => query.bind(value),
                ArrayColumn::NullableTimes(values) => query.bind(values),
            };
        }
        let rows = query
            .fetch_all(self.primary.get_postgres_connection_pool())
            .await
            .map_err(|e| DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)))?;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }

    /// SQLite: how many commit groups were written and how many writes they
    /// held (`None` on PostgreSQL, or before the first write).
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        self.group.get().map(|group| group.stats().read())
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.primary.ping().await.is_ok()
    }

    pub fn pool_stats(&self) -> PoolStats {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.primary {
            DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                of(self.primary.get_postgres_connection_pool())
            }
            DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                of(self.primary.get_sqlite_connection_pool())
            }
            _ => PoolStats::default(),
        }
    }
}

/// `txn` with the transaction-scoped advisory lock that `lock` takes, or
/// `None` (the transaction rolled back) while another process holds it.
async fn take_turn(
    txn: DatabaseTransaction,
    lock: &str,
) -> StoreResult<Option<DatabaseTransaction>> {
    let locked = txn
        .query_one(run::statement(txn.get_database_backend(), lock, vec![]))
        .await?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false);
    if locked {
        Ok(Some(txn))
    } else {
        txn.rollback().await?;
        Ok(None)
    }
}
