//! Run retention: whole finished runs deleted once they are older than the
//! horizon, so the table does not only grow.
//!
//! A run (a root and its whole tree) may go when its root is terminal with
//! `completed_at` before the horizon, nothing in its tree is CREATED,
//! RUNNING or PAUSED, and nothing in it holds a live claim. The choice and
//! the delete run in one transaction that sees one snapshot (REPEATABLE READ
//! on PostgreSQL; one writer on SQLite): a child created in the run before
//! it keeps the run, one created after it finds its parent gone
//! (BAD_USER_INPUT) or, created while it runs, fails the round (a
//! serialization error; the round is retried later). Claims and recovery
//! history go with their executions (the schema cascades). Retention writes
//! no events: the runs it deletes are long finished, and its own metrics
//! count them.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, IsolationLevel};

use super::Runs;
use crate::store::db::{now, run, StoreResult};
use crate::store::sql::Statements;

/// What retention deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunsDeleted {
    pub runs: u64,
    pub executions: u64,
}

impl Runs {
    /// When the oldest finished run still kept finished (None: none).
    pub async fn oldest_finished_run(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let oldest = self.db.stmt(self.db.sql().oldest_finished_run, []);
        run::time_at(self.db.primary(), oldest).await
    }

    /// Deletes every eligible run finished before `horizon`, `runs_per_batch`
    /// runs per short transaction.
    pub async fn delete_finished_runs(
        &self,
        horizon: DateTime<Utc>,
        runs_per_batch: i64,
    ) -> StoreResult<RunsDeleted> {
        let mut total = RunsDeleted::default();
        loop {
            let started = std::time::Instant::now();
            let sql = self.db.sql();
            let batch = self
                .db
                .maintenance(
                    sql.retention_lock,
                    Some(IsolationLevel::RepeatableRead),
                    move |txn| Box::pin(delete_runs_in(txn, sql, horizon, runs_per_batch)),
                )
                .await?
                .unwrap_or_default();
            total.runs += batch.runs;
            total.executions += batch.executions;
            if (batch.runs as i64) < runs_per_batch {
                return Ok(total);
            }
            // Half the time deleting, half resting: a purge of millions
            // leaves the database to the fleet's claims every other moment
            // (measured in BENCHMARKS.md, "The fleet under load").
            tokio::time::sleep(started.elapsed()).await;
        }
    }
}

/// Deletes up to `runs` finished runs older than `horizon` in `txn`.
async fn delete_runs_in(
    txn: &DatabaseTransaction,
    sql: &'static Statements,
    horizon: DateTime<Utc>,
    runs: i64,
) -> StoreResult<RunsDeleted> {
    let backend = txn.get_database_backend();
    let choice = run::statement(
        backend,
        sql.finished_runs,
        [horizon.into(), now().into(), runs.into()],
    );
    let mut deleted = RunsDeleted::default();
    let mut roots = Vec::new();
    for row in txn.query_all(choice).await? {
        roots.push(row.try_get::<String>("", "id")?);
        deleted.executions += row.try_get::<i64>("", "size")? as u64;
    }
    deleted.runs = roots.len() as u64;
    if !roots.is_empty() {
        let delete = run::statement(backend, sql.delete_runs, [run::json_list(&roots).into()]);
        txn.execute(delete).await?;
    }
    Ok(deleted)
}
