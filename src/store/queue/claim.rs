//! `claimExecution`: one execution, by id.

use sea_orm::FromQueryResult;

use super::{claim_of, expiry, ClaimOutcome, ClaimRejection, Queue};
use crate::store::db::{now, run, validate, Effects, StoreResult};
use entity::ExecutionStatus;

#[derive(FromQueryResult)]
struct ClaimState {
    status: ExecutionStatus,
    paused: bool,
    waiting: i32,
}

impl Queue {
    /// `claimExecution`: atomic; of any number of concurrent claimers exactly
    /// one acquires. Sets the execution's processing worker in the same
    /// write.
    pub async fn claim_execution(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
    ) -> StoreResult<ClaimOutcome> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        let now = now();
        // The parameters every claim statement takes (see `pull`): worker,
        // now, expiry, then the execution (and three a pull uses).
        let values = vec![
            worker_id.to_owned().into(),
            now.into(),
            expiry(now, timeout_ms).into(),
            execution_id.to_owned().into(),
            Option::<i32>::None.into(),
            Option::<chrono::DateTime<chrono::Utc>>::None.into(),
            Option::<String>::None.into(),
        ];
        let steps = self.db.sql().claim;
        let claimed = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let rows = run::decode_all(&run::steps(w, steps, values).await?)?;
                    let effects = Effects::changed(&rows);
                    Ok((rows.into_iter().next(), effects))
                })
            })
            .await?;
        let Some(claim) = claimed.as_ref().and_then(claim_of) else {
            let rejection = self.rejection(execution_id).await?;
            crate::metrics::claim(match rejection {
                ClaimRejection::NotFound => "not_found",
                ClaimRejection::Terminal => "terminal",
                ClaimRejection::HeldByOther => "held_by_other",
                ClaimRejection::Paused => "paused",
                ClaimRejection::ConcurrencyLimit => "concurrency_limit",
            });
            return Ok(ClaimOutcome {
                claim: None,
                rejection: Some(rejection),
            });
        };
        crate::metrics::claim("acquired");
        Ok(ClaimOutcome {
            claim: Some(claim),
            rejection: None,
        })
    }

    async fn rejection(&self, execution_id: &str) -> StoreResult<ClaimRejection> {
        let status = self.db.stmt(
            self.db.sql().execution_status,
            [execution_id.to_owned().into()],
        );
        let state: Option<ClaimState> = run::model(self.db.primary(), status).await?;
        Ok(match state {
            None => ClaimRejection::NotFound,
            Some(s) if s.status.is_terminal() => ClaimRejection::Terminal,
            Some(s)
                if s.paused
                    && matches!(s.status, ExecutionStatus::Created | ExecutionStatus::Paused) =>
            {
                ClaimRejection::Paused
            }
            Some(s) if s.waiting > 0 => ClaimRejection::ConcurrencyLimit,
            Some(_) => ClaimRejection::HeldByOther,
        })
    }
}
