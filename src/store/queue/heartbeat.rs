//! Heartbeats, releases and the expiry of claims.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use sea_orm::ConnectionTrait;
use serde_json::Value;

use super::{expiry, ClaimExtension, Queue};
use crate::store::db::{now, run, validate, Effects, Scope, StoreResult};
use entity::ExecutionStatus;

impl Queue {
    /// `extendClaim` (heartbeat): only the holder of a live claim. The
    /// execution's lease moves with the claim's expiry. One item of
    /// `extend_many`.
    pub async fn extend_claim(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        let extended = self
            .extend_many(worker_id, vec![execution_id.to_owned()], timeout_ms)
            .await?;
        Ok(extended.iter().any(|e| e.expires_at.is_some()))
    }

    /// `extendClaims`: one heartbeat for everything `worker_id` holds among
    /// `execution_ids`; the others are reported, unchanged.
    pub async fn extend_many(
        &self,
        worker_id: &str,
        execution_ids: Vec<String>,
        timeout_ms: i64,
    ) -> StoreResult<Vec<ClaimExtension>> {
        validate::batch("executionIds", execution_ids.len())?;
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        for id in &execution_ids {
            validate::id("executionIds", id)?;
        }
        if execution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let expires = expiry(at, timeout_ms);
        let values = vec![
            Value::from(execution_ids.clone()).to_string().into(),
            worker_id.to_owned().into(),
            at.into(),
            expires.into(),
        ];
        let steps = self.db.sql().extend_many;
        // Each extended claim's new expiry: `expires`, or its node
        // deadline when that comes first.
        let extended: HashMap<String, DateTime<Utc>> = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let rows = run::steps(w, steps, values).await?;
                    let ids = rows
                        .iter()
                        .map(|row| {
                            let id = row.try_get_by_index::<String>(0)?;
                            let until = row.try_get_by_index::<Option<DateTime<Utc>>>(1)?;
                            Ok((id, until.unwrap_or(expires)))
                        })
                        .collect::<Result<HashMap<_, _>, sea_orm::DbErr>>()?;
                    let effects = match ids.is_empty() {
                        true => Effects::none(),
                        false => Effects::logged(),
                    };
                    Ok((ids, effects))
                })
            })
            .await?;
        let refused: Vec<String> = execution_ids
            .iter()
            .filter(|id| !extended.contains_key(*id))
            .cloned()
            .collect();
        let cancelled = self.cancelled(worker_id, &refused).await?;
        Ok(execution_ids
            .into_iter()
            .map(|id| ClaimExtension {
                expires_at: extended.get(&id).copied(),
                code: cancelled.contains(&id).then_some("CANCELLED"),
                execution_id: id,
            })
            .collect())
    }

    /// Which of `ids` `worker_id` was working on when they were stopped
    /// (cancelled: a cancel keeps the processing worker and releases its
    /// claim): its heartbeat for one is refused with `CANCELLED`.
    async fn cancelled(&self, worker_id: &str, ids: &[String]) -> StoreResult<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = self.db.stmt(
            self.db.sql().executions_by_ids,
            [run::json_list(ids).into(), Scope::All.param()],
        );
        let rows: Vec<entity::execution::Model> = run::executions(self.db.primary(), rows).await?;
        Ok(rows
            .into_iter()
            .filter(|e| {
                e.status == ExecutionStatus::Stopped
                    && e.processing_worker_id.as_deref() == Some(worker_id)
            })
            .map(|e| e.id)
            .collect())
    }

    /// `releaseExecution`: the holder marks its claim released and stops
    /// being the execution's processing worker; the execution is claimable
    /// again at once. Anyone else: false, no change.
    pub async fn release_execution(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        let values = vec![
            execution_id.to_owned().into(),
            worker_id.to_owned().into(),
            now().into(),
        ];
        let steps = self.db.sql().release;
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let released = run::decode_all(&run::steps(w, steps, values).await?)?;
                    let effects = Effects::changed(&released).requeued_when(&released);
                    Ok((!released.is_empty(), effects))
                })
            })
            .await
    }

    /// `expireOldClaims`: active claims past their expiry become `expired`.
    pub async fn expire_old_claims(&self) -> StoreResult<u64> {
        let text = self.db.sql().expire_old_claims;
        let at = now();
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let expire = run::statement(w.get_database_backend(), text, [at.into()]);
                    let expired = w.query_all(expire).await?.len() as u64;
                    let effects = match expired {
                        0 => Effects::none(),
                        _ => Effects::logged(),
                    };
                    Ok((expired, effects))
                })
            })
            .await
    }
}
