//! Where a write runs, and SQLite's group commit.
//!
//! SQLite has one writer at a time, and with `synchronous=full` every commit
//! waits for the disk (an fsync of the WAL). Committing each request on its
//! own caps a busy server at one request per sync. Here every SQLite write of
//! the store goes to one writer task instead: while a commit is being synced,
//! the writes that arrive queue up, and the next transaction takes them all
//! (up to [`MAX_GROUP`]), each inside its own savepoint, then commits once.
//! A request is answered only after the commit that holds its write is on
//! disk, so durability is what it was; a write that fails rolls back to its
//! savepoint and leaves the others of its group alone.
//!
//! PostgreSQL needs none of this (its own group commit works across
//! connections): there a write runs on the pool, as before.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::FutureExt as _;
use sea_orm::prelude::async_trait;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

use super::error::{StoreError, StoreResult};
use crate::store::sql::SQLITE_TAKE_WRITE_LOCK;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The most writes one SQLite transaction takes.
pub const MAX_GROUP: usize = 256;

/// Where one write of the store runs: the PostgreSQL pool, or this write's
/// savepoint inside a SQLite group transaction. Statements run on it as on
/// any connection; `transaction` runs several in a transaction (PostgreSQL)
/// or a nested savepoint (SQLite), so they are atomic on both.
pub(crate) enum Writer<'a> {
    Pool(&'a DatabaseConnection),
    Group(&'a DatabaseTransaction),
}

impl Writer<'_> {
    /// Runs `work` in a transaction of its own (a savepoint inside the
    /// group on SQLite): committed when it succeeds, rolled back when not.
    pub async fn transaction<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, StoreResult<T>>,
    {
        let txn = match self {
            Writer::Pool(db) => db.begin().await?,
            Writer::Group(txn) => txn.begin().await?,
        };
        in_transaction(txn, work).await
    }
}

/// Runs `work` in `txn` and ends it on every way out: committed when `work`
/// succeeds, rolled back at once when it fails. (Not left to `Drop`: on
/// PostgreSQL a dropped transaction is rolled back only when its connection
/// is next used, and until then it holds the cluster's xmin, which holds
/// back every reader of the event log.)
pub(crate) async fn in_transaction<T, F>(txn: DatabaseTransaction, work: F) -> StoreResult<T>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, StoreResult<T>>,
{
    match work(&txn).await {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            txn.rollback().await?;
            Err(err)
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Writer<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Writer::Pool(db) => db.get_database_backend(),
            Writer::Group(txn) => txn.get_database_backend(),
        }
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Writer::Pool(db) => db.execute(stmt).await,
            Writer::Group(txn) => txn.execute(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Writer::Pool(db) => db.execute_unprepared(sql).await,
            Writer::Group(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Writer::Pool(db) => db.query_one(stmt).await,
            Writer::Group(txn) => txn.query_one(stmt).await,
        }
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Writer::Pool(db) => db.query_all(stmt).await,
            Writer::Group(txn) => txn.query_all(stmt).await,
        }
    }
}

type Answer = StoreResult<Box<dyn Any + Send>>;
type WriteJob = Box<dyn for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Answer> + Send>;

/// One queued write: what it does inside its savepoint, and where its
/// answer goes once its group is committed (or not).
struct Job {
    write: WriteJob,
    reply: oneshot::Sender<Answer>,
}

/// How many groups were committed and how many writes they held.
#[derive(Default)]
pub struct GroupCommitStats {
    groups: AtomicU64,
    writes: AtomicU64,
}

impl GroupCommitStats {
    /// (groups committed, writes in them).
    pub fn read(&self) -> (u64, u64) {
        (
            self.groups.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

/// The SQLite writer task's queue. Dropping the last clone ends the task.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
    stats: Arc<GroupCommitStats>,
}

impl GroupCommit {
    pub fn start(db: DatabaseConnection) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let stats = Arc::new(GroupCommitStats::default());
        tokio::spawn(serve(db, queue, stats.clone()));
        Self { jobs, stats }
    }

    pub fn stats(&self) -> &GroupCommitStats {
        &self.stats
    }

    /// Runs `write` in the next group; its answer once that group is on disk.
    pub async fn run<T, F>(&self, write: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'w> FnOnce(&'w Writer<'w>) -> BoxFuture<'w, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            write: Box::new(move |txn: &DatabaseTransaction| {
                Box::pin(async move {
                    let writer = Writer::Group(txn);
                    let value = write(&writer).await?;
                    Ok(Box::new(value) as Box<dyn Any + Send>)
                })
            }),
            reply,
        };
        self.jobs.send(job).map_err(|_| group_failed("stopped"))?;
        let value = answer.await.map_err(|_| group_failed("stopped"))??;
        value
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| group_failed("answered with another type"))
    }
}

fn group_failed(why: &str) -> StoreError {
    StoreError::Database(DbErr::Custom(format!("the SQLite writer {why}")))
}

async fn serve(
    db: DatabaseConnection,
    mut queue: mpsc::UnboundedReceiver<Job>,
    stats: Arc<GroupCommitStats>,
) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let size = group.len() as u64;
        if commit_group(&db, group).await {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(size, Ordering::Relaxed);
        }
    }
}

/// Runs one group in one transaction; true when it committed. Every job is
/// answered: with its own result once the commit is synced, or with an
/// error when the group could not be committed (then none of it was).
async fn commit_group(db: &DatabaseConnection, group: Vec<Job>) -> bool {
    let txn = match begin_write(db).await {
        Ok(txn) => txn,
        Err(err) => {
            fail_all(group.into_iter().map(|job| job.reply), &err.to_string());
            return false;
        }
    };
    let mut done: Vec<(oneshot::Sender<Answer>, Answer)> = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    let mut broken = None;
    for job in jobs.by_ref() {
        // Its request is gone (timed out, or the client hung up): nobody
        // would learn the outcome, so the write is not made (a pull would
        // otherwise lease executions to a worker that never hears of them).
        if job.reply.is_closed() {
            continue;
        }
        match run_in_savepoint(&txn, job.write).await {
            Ok(answer) => done.push((job.reply, answer)),
            Err(why) => {
                broken = Some((job.reply, why));
                break;
            }
        }
    }
    if let Some((reply, why)) = broken {
        // A savepoint could not be rolled back (or a write panicked): the
        // transaction's state is unknown, so none of the group is kept.
        let _ = txn.rollback().await;
        let replies = done
            .into_iter()
            .map(|(reply, _)| reply)
            .chain(std::iter::once(reply))
            .chain(jobs.map(|job| job.reply));
        fail_all(replies, &why);
        return false;
    }
    match txn.commit().await {
        Ok(()) => {
            for (reply, answer) in done {
                let _ = reply.send(answer);
            }
            true
        }
        Err(err) => {
            fail_all(done.into_iter().map(|(reply, _)| reply), &err.to_string());
            false
        }
    }
}

/// One job in its savepoint: kept when it succeeds, rolled back when it
/// fails (its answer is then its error). `Err` when the group is broken.
async fn run_in_savepoint(txn: &DatabaseTransaction, write: WriteJob) -> Result<Answer, String> {
    let savepoint = txn.begin().await.map_err(|e| e.to_string())?;
    let answer = AssertUnwindSafe(write(&savepoint))
        .catch_unwind()
        .await
        .map_err(|_| "a write panicked".to_owned())?;
    match answer {
        Ok(value) => {
            savepoint.commit().await.map_err(|e| e.to_string())?;
            Ok(Ok(value))
        }
        Err(err) => {
            savepoint.rollback().await.map_err(|e| e.to_string())?;
            Ok(Err(err))
        }
    }
}

fn fail_all(replies: impl Iterator<Item = oneshot::Sender<Answer>>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(StoreError::from(DbErr::Custom(format!(
            "the write's transaction was not committed: {why}"
        )))));
    }
}

/// The group's SQLite transaction, holding the write lock from its first
/// statement (`take_write_lock.sql`).
async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared(SQLITE_TAKE_WRITE_LOCK).await?;
    Ok(txn)
}
