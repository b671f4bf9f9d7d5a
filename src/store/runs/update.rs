//! `updateExecutionStatus` and `updateFailureInfo`.
//!
//! Either one can be recovery putting an execution back: set to CREATED (or
//! left CREATED) with a failure count above the stored one. That is a retry,
//! as a finish with status CREATED is: it is due again after its backoff, or
//! ends FAILED when the count reaches its attempts (`db::retry`).

use chrono::{DateTime, Utc};

use super::{default_times, Runs, StatusUpdate};
use crate::store::db::{
    jitter, now, run, truncate_micros, validate, AfterFailure, Effects, Scope, Slots, StoreError,
    StoreResult,
};
use entity::execution::Model as Execution;
use entity::ExecutionStatus;

impl Runs {
    /// `updateExecutionStatus`: the status and every field given; a field
    /// left out keeps its stored value.
    pub async fn update_execution_status(
        &self,
        mut update: StatusUpdate,
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
        let mut run_at = None;
        if let (ExecutionStatus::Created, Some(count)) = (update.status, update.failure_count) {
            match self
                .after_failure(&update.execution_id, count, true, scope, now)
                .await?
            {
                Some(AfterFailure::Retry { at }) => run_at = Some(at),
                Some(AfterFailure::Exhausted { message }) => {
                    update.status = ExecutionStatus::Failed;
                    update.error_message = Some(message);
                }
                None => {}
            }
        }
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
                run_at.into(),
            ],
        );
        let updated = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let row = run::execution(w, statement).await?;
                    // Set back to CREATED: possibly back in the queue.
                    let effects = Effects::changed(&row)
                        .requeued_when(&row)
                        .admitting(Slots::of(&row));
                    Ok((row, effects))
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
        let now = now();
        let (run_at, ended, message) = match self
            .after_failure(execution_id, failure_count, false, scope, now)
            .await?
        {
            Some(AfterFailure::Retry { at }) => (Some(at), None, None),
            Some(AfterFailure::Exhausted { message }) => (
                None,
                Some(ExecutionStatus::Failed.as_str().to_owned()),
                Some(message),
            ),
            None => (None, None, None),
        };
        let statement = self.db.stmt(
            self.db.sql().update_failure_info,
            [
                failure_count.into(),
                reason.to_owned().into(),
                now.into(),
                execution_id.to_owned().into(),
                scope.param(),
                run_at.into(),
                ended.into(),
                message.into(),
            ],
        );
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let row = run::execution(w, statement).await?;
                    // Failed for good: its slots are free.
                    let effects = Effects::changed(&row).admitting(Slots::of(&row));
                    Ok((row.is_some(), effects))
                })
            })
            .await
    }

    /// When a count of `failures` is a new failure of execution `id` put
    /// back in the queue (CREATED, or `putting_back` a RUNNING or PAUSED
    /// one), what comes after it; None when it is not (absent, finished, not
    /// CREATED nor put back, or the count is not higher).
    async fn after_failure(
        &self,
        id: &str,
        failures: i32,
        putting_back: bool,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AfterFailure>> {
        let row = self.db.stmt(
            self.db.sql().execution,
            [id.to_owned().into(), scope.param()],
        );
        let Some(row) = run::execution(self.db.primary(), row).await? else {
            return Ok(None);
        };
        let queued =
            row.status == ExecutionStatus::Created || (putting_back && !row.status.is_terminal());
        if !queued || failures <= row.failure_count {
            return Ok(None);
        }
        let policy = self.db.retry_policy();
        Ok(Some(policy.after_failure(
            row.options.as_ref(),
            failures,
            None,
            now,
            jitter(),
        )))
    }
}
