//! Run retention: whole finished runs deleted once they are older than the
//! horizon, so the table does not only grow.
//!
//! A run (a root and its whole tree) may go when its root is terminal with
//! `completed_at` before the horizon, nothing in its tree is CREATED,
//! RUNNING or PAUSED, and nothing in it holds a live claim. The check and
//! the delete are ONE statement, so they see the same data: a child created
//! in the run before the statement keeps the run; one created after it finds
//! its parent gone (BAD_USER_INPUT). Claims and recovery history go with
//! their executions (the schema cascades). Retention writes no events: the
//! runs it deletes are long finished, and its own metrics count them.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use super::{ExecutionStore, StoreResult};

/// Deletes the executions of up to $3 eligible runs, oldest finished first
/// (through the index of finished roots), and returns one row per deleted
/// execution telling whether it was a root.
const DELETE_FINISHED_RUNS: &str = "\
DELETE FROM executions WHERE root_execution_id IN (
    SELECT r.id FROM executions r
    WHERE r.execution_depth = 0
      AND r.status IN ('completed', 'failed', 'stopped')
      AND r.completed_at < $1
      AND NOT EXISTS (
          SELECT 1 FROM executions x
          WHERE x.root_execution_id = r.id AND x.status IN ('created', 'running', 'paused'))
      AND NOT EXISTS (
          SELECT 1 FROM executions x JOIN execution_claims c ON c.execution_id = x.id
          WHERE x.root_execution_id = r.id AND c.status = 'active' AND c.expires_at >= $2)
    ORDER BY r.completed_at, r.id
    LIMIT $3)
RETURNING CASE WHEN parent_execution_id IS NULL THEN 1 ELSE 0 END AS is_root";

/// SQLite: the same choice, first (one writer at a time: nothing changes
/// between this and the delete), with each run's size.
const SQLITE_FINISHED_RUNS: &str = "\
SELECT r.id, (SELECT COUNT(*) FROM executions x WHERE x.root_execution_id = r.id) AS size
FROM executions r
WHERE r.execution_depth = 0
  AND r.status IN ('completed', 'failed', 'stopped')
  AND r.completed_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM executions x
      WHERE x.root_execution_id = r.id AND x.status IN ('created', 'running', 'paused'))
  AND NOT EXISTS (
      SELECT 1 FROM executions x JOIN execution_claims c ON c.execution_id = x.id
      WHERE x.root_execution_id = r.id AND c.status = 'active' AND c.expires_at >= $2)
ORDER BY r.completed_at, r.id
LIMIT $3";

/// SQLite: deletes the runs chosen (their roots, as a JSON array $1); the
/// cascade takes the trees.
const SQLITE_DELETE_RUNS: &str =
    "DELETE FROM executions WHERE id IN (SELECT value FROM json_each($1))";

/// One retention process at a time on PostgreSQL (the others skip).
const PG_RETENTION_LOCK: &str = "SELECT pg_try_advisory_xact_lock(7274851024) AS locked";

/// When the oldest finished run still kept finished (the index of
/// finished roots: one entry read).
const OLDEST_FINISHED_RUN: &str = "\
SELECT MIN(completed_at) AS at FROM executions
WHERE execution_depth = 0 AND status IN ('completed', 'failed', 'stopped')";

/// What retention deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunsDeleted {
    pub runs: u64,
    pub executions: u64,
}

impl ExecutionStore {
    /// When the oldest finished run still kept finished (None: none).
    pub async fn oldest_finished_run(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = self
            .db
            .query_one(Statement::from_string(self.backend(), OLDEST_FINISHED_RUN))
            .await?;
        Ok(match row {
            Some(row) => row.try_get("", "at")?,
            None => None,
        })
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
            let batch = self
                .delete_finished_runs_batch(horizon, runs_per_batch)
                .await?;
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

    async fn delete_finished_runs_batch(
        &self,
        horizon: DateTime<Utc>,
        runs: i64,
    ) -> StoreResult<RunsDeleted> {
        let backend = self.backend();
        // PostgreSQL: REPEATABLE READ, so that a child inserted into a run
        // while it is being deleted (its insert holding the parent row) makes
        // the cascade fail with a serialization error — the round is retried
        // later — instead of taking the just-acknowledged child with it.
        if backend != DbBackend::Postgres {
            // SQLite: a write of the commit groups, so that retention gets
            // its turn under any write load.
            return self
                .write(move |w| {
                    Box::pin(async move {
                        w.transaction(|txn| Box::pin(delete_runs_in(txn, backend, horizon, runs)))
                            .await
                    })
                })
                .await;
        }
        let txn = self
            .db
            .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), None)
            .await?;
        match super::event_log::take_turn(txn, PG_RETENTION_LOCK).await? {
            Some(txn) => {
                super::group_commit::in_transaction(txn, |txn| {
                    Box::pin(delete_runs_in(txn, backend, horizon, runs))
                })
                .await
            }
            None => Ok(RunsDeleted::default()),
        }
    }
}

/// Deletes up to `runs` finished runs older than `horizon` in `txn`.
async fn delete_runs_in(
    txn: &sea_orm::DatabaseTransaction,
    backend: DbBackend,
    horizon: DateTime<Utc>,
    runs: i64,
) -> StoreResult<RunsDeleted> {
    let choice = [horizon.into(), super::now().into(), runs.into()];
    let mut deleted = RunsDeleted::default();
    if backend == DbBackend::Postgres {
        // PostgreSQL deletes every matched row itself (cascades run at
        // the end of the statement), so RETURNING counts them all.
        let rows = txn
            .query_all(Statement::from_sql_and_values(
                backend,
                DELETE_FINISHED_RUNS,
                choice,
            ))
            .await?;
        for row in rows {
            deleted.executions += 1;
            if row.try_get::<i32>("", "is_root")? == 1 {
                deleted.runs += 1;
            }
        }
    } else {
        let rows = txn
            .query_all(Statement::from_sql_and_values(
                backend,
                SQLITE_FINISHED_RUNS,
                choice,
            ))
            .await?;
        let mut roots = Vec::with_capacity(rows.len());
        for row in rows {
            roots.push(row.try_get::<String>("", "id")?);
            deleted.executions += row.try_get::<i64>("", "size")? as u64;
        }
        deleted.runs = roots.len() as u64;
        if !roots.is_empty() {
            txn.execute(Statement::from_sql_and_values(
                backend,
                SQLITE_DELETE_RUNS,
                [super::sql::json_list(&roots).into()],
            ))
            .await?;
        }
    }
    Ok(deleted)
}
