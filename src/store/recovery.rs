//! Recovery: finding executions whose worker died, recording what was done
//! about them, and the named leases recovery workers coordinate with.

use std::collections::HashMap;

use chrono::Duration;
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::error::is_foreign_key_violation;
use super::sql::{PerKey, Sql};
use super::{
    limits, now, validate, Execution, ExecutionStore, Recovery, Scope, StoreError, StoreResult,
};

#[derive(Clone, Debug)]
pub struct NewRecovery {
    pub execution_id: String,
    pub worker_id: String,
    pub reason: String,
    pub previous_status: Option<String>,
    pub previous_worker_id: Option<String>,
}

impl ExecutionStore {
    /// `getExecutionsNeedingRecovery`, oldest first:
    /// 1. CREATED, failureCount 0, without a live claim;
    /// 2. RUNNING without a live claim (no row, released, expired, or active
    ///    past expiry — the seed looked only at active rows);
    /// 3. CREATED with 0 < failureCount < 5 whose last failure is over a
    ///    minute old.
    pub async fn get_executions_needing_recovery(
        &self,
        limit: i64,
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        validate::range("limit", limit, 1, limits::MAX_RECOVERY_LIMIT)?;
        let now = now();
        // One ordered read per kind of candidate, each through its own
        // partial index, merged: the fresh queue (CREATED without a lease)
        // in queue order, stopping at `limit` matches; then every CREATED
        // row with a lease (live, or lapsed and not yet put back by a pull)
        // and every RUNNING row, sorted. The cost follows the answer and the
        // leased and running work, not the table (one condition over all
        // executions read the whole index of runs).
        let mut sql = Sql::new("");
        let at = sql.bind(now);
        let retry_before = sql.bind(now - Duration::minutes(1));
        let max_failures = sql.bind(limits::MAX_RECOVERY_FAILURES);
        let n = sql.bind(limit);
        let owner = sql.owner_filter("e.owner_id", scope);
        let no_live_claim = format!(
            "NOT EXISTS (SELECT 1 FROM execution_claims c \
             WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= {at})"
        );
        let created = format!(
            "((e.failure_count = 0 AND {no_live_claim}) \
             OR (e.failure_count > 0 AND e.failure_count < {max_failures} \
                 AND e.last_failure_at < {retry_before}))"
        );
        // Each part a subquery of its own: SQLite allows ORDER BY and LIMIT
        // only at the end of a whole UNION, not on its members.
        let part = |alias: &str, condition: &str| {
            format!(
                "SELECT * FROM (SELECT e.* FROM executions e WHERE {condition}{owner} \
                 ORDER BY e.created_at, e.id LIMIT {n}) {alias}"
            )
        };
        sql.push(&format!(
            "SELECT * FROM ({} UNION ALL {} UNION ALL {}) r ORDER BY r.created_at, r.id LIMIT {n}",
            part(
                "fresh",
                &format!("e.status = 'created' AND e.lease_expires_at IS NULL AND {created}")
            ),
            part(
                "leased",
                &format!("e.status = 'created' AND e.lease_expires_at IS NOT NULL AND {created}")
            ),
            part(
                "running",
                &format!("e.status = 'running' AND {no_live_claim}")
            ),
        ));
        Self::query_executions(&self.db, sql).await
    }

    /// `recordRecovery`.
    pub async fn record_recovery(&self, input: NewRecovery) -> StoreResult<Recovery> {
        validate::id("executionId", &input.execution_id)?;
        validate::id("workerId", &input.worker_id)?;
        if let Some(previous) = &input.previous_worker_id {
            validate::id("previousWorkerId", previous)?;
        }
        let mut sql = Sql::new("INSERT INTO execution_recovery (execution_id, recovered_at, recovered_by_worker, recovery_reason, previous_status, previous_worker_id) VALUES (");
        let values = [
            sql.bind(input.execution_id.clone()),
            sql.bind(now()),
            sql.bind(input.worker_id),
            sql.bind(input.reason),
            sql.bind(input.previous_status),
            sql.bind(input.previous_worker_id),
        ];
        sql.push(&values.join(", ")).push(") RETURNING *");
        match self.write_row::<Recovery>(sql.build(self.backend())).await {
            Ok(Some(row)) => {
                // Logged as an update of the execution, by a trigger.
                self.events.committed();
                Ok(row)
            }
            Ok(None) => Err(StoreError::not_found("execution", &input.execution_id)),
            Err(StoreError::Database(e)) if is_foreign_key_violation(&e) => {
                Err(StoreError::not_found("execution", &input.execution_id))
            }
            Err(e) => Err(e),
        }
    }

    /// `getRecoveryHistory`, newest first.
    pub async fn get_recovery_history(
        &self,
        execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<Vec<Recovery>> {
        validate::id("executionId", execution_id)?;
        Ok(self
            .recovery_history_for(&[execution_id.to_owned()], scope)
            .await?
            .remove(execution_id)
            .unwrap_or_default())
    }

    /// Recovery histories of many executions in one statement, newest first.
    pub async fn recovery_history_for(
        &self,
        execution_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Recovery>>> {
        let mut histories: HashMap<String, Vec<Recovery>> = execution_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        if execution_ids.is_empty() {
            return Ok(histories);
        }
        let mut sql = Sql::new("SELECT r.*");
        let filter = sql.owner_of_execution("x.execution_id", scope);
        sql.per_key(
            self.backend(),
            execution_ids,
            PerKey {
                table: "execution_recovery",
                column: "execution_id",
                filter,
                order: "x.recovered_at DESC, x.id DESC",
                limit: None,
            },
        );
        sql.push(" ORDER BY r.recovered_at DESC, r.id DESC");
        for row in Recovery::find_by_statement(sql.build(self.backend()))
            .all(&self.reads)
            .await?
        {
            if let Some(list) = histories.get_mut(&row.execution_id) {
                list.push(row);
            }
        }
        Ok(histories)
    }

    /// `tryAcquireRecoveryLock`: a lease, acquired when free, expired, or
    /// already held by `holder_id` (which renews it). One statement.
    pub async fn try_acquire_recovery_lock(
        &self,
        lock_id: i64,
        holder_id: &str,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        validate::id("holderId", holder_id)?;
        validate::timeout_ms("ttlMs", ttl_ms)?;
        let now = now();
        let mut sql = Sql::new(
            "INSERT INTO recovery_locks (lock_id, holder_id, acquired_at, expires_at) VALUES (",
        );
        let values = [
            sql.bind(lock_id),
            sql.bind(holder_id.to_owned()),
            sql.bind(now),
            sql.bind(now + Duration::milliseconds(ttl_ms)),
        ];
        sql.push(&values.join(", ")).push(
            ") ON CONFLICT (lock_id) DO UPDATE SET \
             acquired_at = CASE WHEN recovery_locks.holder_id = excluded.holder_id \
                 AND recovery_locks.expires_at >= excluded.acquired_at \
                 THEN recovery_locks.acquired_at ELSE excluded.acquired_at END, \
             holder_id = excluded.holder_id, expires_at = excluded.expires_at \
             WHERE recovery_locks.expires_at < excluded.acquired_at \
                 OR recovery_locks.holder_id = excluded.holder_id \
             RETURNING lock_id",
        );
        let statement = sql.build(self.backend());
        let taken = self
            .write(move |w| Box::pin(async move { Ok(w.query_one(statement).await?.is_some()) }))
            .await?;
        Ok(taken)
    }

    /// `releaseRecoveryLock`: frees the lease, only for its holder.
    pub async fn release_recovery_lock(&self, lock_id: i64, holder_id: &str) -> StoreResult<bool> {
        validate::id("holderId", holder_id)?;
        let mut sql = Sql::new("DELETE FROM recovery_locks WHERE lock_id = ");
        let id = sql.bind(lock_id);
        let holder = sql.bind(holder_id.to_owned());
        sql.push(&format!("{id} AND holder_id = {holder}"));
        let statement = sql.build(self.backend());
        let freed = self
            .write(move |w| {
                Box::pin(async move { Ok(w.execute(statement).await?.rows_affected() > 0) })
            })
            .await?;
        Ok(freed)
    }
}
