//! Recovery: finding executions whose worker died, recording what was done
//! about them, and the named leases recovery workers coordinate with.

use chrono::Duration;
use sea_orm::ConnectionTrait;

use super::Queue;
use crate::store::db::{
    is_foreign_key_violation, limits, now, run, validate, Effects, Scope, StoreError, StoreResult,
};
use entity::execution::Model as Execution;
use entity::execution_recovery::Model as Recovery;

#[derive(Clone, Debug)]
pub struct NewRecovery {
    pub execution_id: String,
    pub worker_id: String,
    pub reason: String,
    pub previous_status: Option<String>,
    pub previous_worker_id: Option<String>,
}

impl Queue {
    /// `getExecutionsNeedingRecovery`, oldest first:
    /// 1. CREATED, failureCount 0, without a live claim;
    /// 2. RUNNING without a live claim (no row, released, expired, or active
    ///    past expiry — the seed looked only at active rows);
    /// 3. CREATED with 0 < failureCount whose retry is due (the queue's
    ///    rule: see `db::retry`).
    ///
    /// Only due executions: one waiting for its due time is not stuck.
    pub async fn get_executions_needing_recovery(
        &self,
        limit: i64,
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        validate::range("limit", limit, 1, limits::MAX_RECOVERY_LIMIT)?;
        let now = now();
        let candidates = self.db.stmt(
            self.db.sql().needing_recovery,
            [now.into(), limit.into(), scope.param()],
        );
        run::executions(self.db.primary(), candidates).await
    }

    /// `recordRecovery`.
    pub async fn record_recovery(&self, input: NewRecovery) -> StoreResult<Recovery> {
        validate::id("executionId", &input.execution_id)?;
        validate::id("workerId", &input.worker_id)?;
        if let Some(previous) = &input.previous_worker_id {
            validate::id("previousWorkerId", previous)?;
        }
        let id = input.execution_id.clone();
        let record = self.db.stmt(
            self.db.sql().record_recovery,
            [
                input.execution_id.into(),
                now().into(),
                input.worker_id.into(),
                input.reason.into(),
                input.previous_status.into(),
                input.previous_worker_id.into(),
            ],
        );
        let recorded = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let row: Option<Recovery> = run::model(w, record).await?;
                    // Logged as an update of the execution, by a trigger.
                    Ok((row, Effects::logged()))
                })
            })
            .await;
        match recorded {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(StoreError::not_found("execution", &id)),
            Err(StoreError::Database(e)) if is_foreign_key_violation(&e) => {
                Err(StoreError::not_found("execution", &id))
            }
            Err(e) => Err(e),
        }
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
        let acquire = self.db.stmt(
            self.db.sql().acquire_recovery_lock,
            [
                lock_id.into(),
                holder_id.to_owned().into(),
                now.into(),
                (now + Duration::milliseconds(ttl_ms)).into(),
            ],
        );
        self.db
            .write(move |w| {
                Box::pin(
                    async move { Ok((w.query_one(acquire).await?.is_some(), Effects::none())) },
                )
            })
            .await
    }

    /// `releaseRecoveryLock`: frees the lease, only for its holder.
    pub async fn release_recovery_lock(&self, lock_id: i64, holder_id: &str) -> StoreResult<bool> {
        validate::id("holderId", holder_id)?;
        let release = self.db.stmt(
            self.db.sql().release_recovery_lock,
            [lock_id.into(), holder_id.to_owned().into()],
        );
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let freed = w.execute(release).await?.rows_affected() > 0;
                    Ok((freed, Effects::none()))
                })
            })
            .await
    }
}
