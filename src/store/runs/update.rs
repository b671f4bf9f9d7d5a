//! `updateExecutionStatus` and `updateFailureInfo`.

use super::{default_times, Runs, StatusUpdate};
use crate::store::db::{
    now, run, truncate_micros, validate, Effects, Scope, StoreError, StoreResult,
};
use entity::execution::Model as Execution;
use entity::ExecutionStatus;

impl Runs {
    /// `updateExecutionStatus`: the status and every field given; a field
    /// left out keeps its stored value.
    pub async fn update_execution_status(
        &self,
        update: StatusUpdate,
        scope: &Scope,
    ) -> StoreResult<Execution> {
        validate::id("executionId", &update.execution_id)?;
        if let Some(count) = update.failure_count {
            validate::non_negative("failureCount", count)?;
        }
        for (field, value) in [
            ("errorNodeId", &update.error_node_id),
            ("processingWorkerId", &update.processing_worker_id),
        ] {
            if let Some(value) = value {
                validate::id(field, value)?;
            }
        }
        let now = now();
        let (started_at, completed_at) = default_times(
            update.status,
            update.started_at.map(truncate_micros),
            update.completed_at.map(truncate_micros),
            now,
        );
        let id = update.execution_id.clone();
        let statement = self.db.stmt(
            self.db.sql().update_status,
            [
                update.status.as_str().into(),
                now.into(),
                update.error_message.into(),
                update.error_node_id.into(),
                started_at.into(),
                completed_at.into(),
                update.processing_started_at.map(truncate_micros).into(),
                update.processing_worker_id.into(),
                update.failure_count.into(),
                update.last_failure_reason.into(),
                update.last_failure_at.map(truncate_micros).into(),
                update.execution_id.into(),
                scope.param(),
            ],
        );
        let updated = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let row = run::execution(w, statement).await?;
                    // Set back to CREATED: possibly back in the queue.
                    let requeued = row
                        .as_ref()
                        .is_some_and(|e| e.status == ExecutionStatus::Created);
                    Ok((row.clone(), Effects::changed(&row).requeued_if(requeued)))
                })
            })
            .await?;
        updated.ok_or_else(|| StoreError::not_found("execution", &id))
    }

    /// `updateFailureInfo`: false when the execution does not exist.
    pub async fn update_failure_info(
        &self,
        execution_id: &str,
        failure_count: i32,
        reason: &str,
        scope: &Scope,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::non_negative("failureCount", failure_count)?;
        let statement = self.db.stmt(
            self.db.sql().update_failure_info,
            [
                failure_count.into(),
                reason.to_owned().into(),
                now().into(),
                execution_id.to_owned().into(),
                scope.param(),
            ],
        );
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let row = run::execution(w, statement).await?;
                    Ok((row.is_some(), Effects::changed(&row)))
                })
            })
            .await
    }
}
