//! The work queue: claims, pulls, heartbeats, releases, finishes and
//! recovery (the store's `queue`).

use async_graphql::{Context, Object, ID};

use crate::graphql::budget::RowBudget;
use crate::graphql::error::{bad_input, GqlResult, OrGql};
use crate::graphql::guards::{AdminOnly, WorkersOnly};
use crate::graphql::types::{
    ClaimExtension, ClaimOutcome, ConcurrencyLimit, Execution, ExecutionClaim, ExecutionRecovery,
    FinishExecutionInput, FinishOutcome, RecordRecoveryInput,
};
use crate::graphql::{store, viewer};
use crate::store::{limits, NewRecovery};

/// How many candidates `executionsNeedingRecovery` answers when `limit` is
/// left out.
const DEFAULT_RECOVERY_LIMIT: i32 = limits::DEFAULT_RECOVERY_LIMIT as i32;

#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// Executions a recovery worker should pick up, oldest first.
    async fn executions_needing_recovery(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(DEFAULT_RECOVERY_LIMIT)")] limit: Option<i32>,
    ) -> GqlResult<Vec<Execution>> {
        let scope = viewer(ctx)?.scope();
        let rows = store(ctx)?
            .queue()
            .get_executions_needing_recovery(
                i64::from(limit.unwrap_or(DEFAULT_RECOVERY_LIMIT)),
                &scope,
            )
            .await
            .gql()?;
        RowBudget::charge_in(ctx, rows.len()).gql()?;
        Ok(Execution::level(rows))
    }

    /// Every key's concurrency limit, in key order, with how many of its
    /// executions hold a slot now.
    #[graphql(guard = "WorkersOnly")]
    async fn concurrency_limits(&self, ctx: &Context<'_>) -> GqlResult<Vec<ConcurrencyLimit>> {
        let limits = store(ctx)?.runs().concurrency_limits().await.gql()?;
        Ok(limits.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct QueueMutation;

#[Object]
impl QueueMutation {
    /// At most `limit` executions created with `concurrencyKey: key` hold a
    /// slot at once (claimed, or admitted and next in the queue); the others
    /// wait, out of the queue, and are handed out as slots free up.
    /// `limit: null` removes the limit (its waiting executions join the
    /// queue) and answers null. Setting a limit counts the key's unfinished
    /// executions against it at once. Admin only.
    #[graphql(guard = "AdminOnly")]
    async fn set_concurrency_limit(
        &self,
        ctx: &Context<'_>,
        key: String,
        limit: Option<i32>,
    ) -> GqlResult<Option<ConcurrencyLimit>> {
        let set = store(ctx)?
            .runs()
            .set_concurrency_limit(&key, limit)
            .await
            .gql()?;
        Ok(set.map(Into::into))
    }

    /// Atomically claims an execution for a worker.
    #[graphql(guard = "WorkersOnly")]
    async fn claim_execution(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        worker_id: String,
        timeout_ms: i32,
    ) -> GqlResult<ClaimOutcome> {
        let outcome = store(ctx)?
            .queue()
            .claim_execution(&execution_id, &worker_id, i64::from(timeout_ms))
            .await
            .gql()?;
        Ok(ClaimOutcome {
            acquired: outcome.acquired(),
            claim: outcome.claim.map(ExecutionClaim::from),
            rejection: outcome.rejection.map(Into::into),
        })
    }

    /// Pulls work: claims up to `limit` CREATED executions, oldest first.
    /// With `waitMs`, an empty queue makes the call wait (at most
    /// 25,000 ms) and answer as soon as work appears, instead of polling.
    #[graphql(guard = "WorkersOnly")]
    async fn claim_next_executions(
        &self,
        ctx: &Context<'_>,
        worker_id: String,
        timeout_ms: i32,
        flow_id: Option<ID>,
        #[graphql(default = 1)] limit: Option<i32>,
        #[graphql(default = 0)] wait_ms: Option<i32>,
    ) -> GqlResult<Vec<Execution>> {
        let wait_ms = i64::from(wait_ms.unwrap_or(0));
        // EXECSTORE_MAX_WAIT, which the start checked against the request timeout.
        let max_wait = ctx
            .data::<crate::graphql::MaxWaitMs>()
            .map_err(|e| {
                crate::graphql::error::internal(&format!("schema without max wait: {}", e.message))
            })?
            .0;
        if !(0..=max_wait).contains(&wait_ms) {
            return Err(bad_input(
                "waitMs",
                format!("must be between 0 and {max_wait}"),
            ));
        }
        let claimed = store(ctx)?
            .queue()
            .claim_next_executions_waiting(
                &worker_id,
                i64::from(timeout_ms),
                flow_id.as_ref().map(|f| f.as_str()),
                i64::from(limit.unwrap_or(1)),
                std::time::Duration::from_millis(wait_ms as u64),
            )
            .await
            .gql()?;
        Ok(Execution::level(claimed))
    }

    /// Ends a worker's round in one atomic write by the holder of a live
    /// claim: sets the final status (COMPLETED, FAILED, STOPPED) and stamps
    /// completedAt, or puts the execution back to CREATED for a retry
    /// (counting the failure), and releases the claim. `CONFLICT` for a
    /// worker that does not hold a live claim (another's, released, lapsed).
    #[graphql(guard = "WorkersOnly")]
    async fn finish_execution(
        &self,
        ctx: &Context<'_>,
        input: FinishExecutionInput,
    ) -> GqlResult<Execution> {
        let finished = store(ctx)?
            .queue()
            .finish_execution(input.into())
            .await
            .gql()?;
        Ok(Execution::single(finished))
    }

    /// Finishes many executions in one statement (at most 10,000), each as
    /// `finishExecution` would and on its own: an item whose worker holds
    /// no live claim answers `finished: false` with its code and changes
    /// nothing; the others go through. Answers in input order.
    #[graphql(guard = "WorkersOnly")]
    async fn finish_executions(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<FinishExecutionInput>,
    ) -> GqlResult<Vec<FinishOutcome>> {
        let items = inputs.into_iter().map(Into::into).collect();
        let outcomes = store(ctx)?.queue().finish_many(items).await.gql()?;
        let (rows, rest): (Vec<_>, Vec<_>) = outcomes
            .into_iter()
            .map(|o| (o.execution, (o.execution_id, o.refusal)))
            .unzip();
        // The finished rows as one level, so their relations batch.
        let finished: Vec<_> = rows.iter().flatten().cloned().collect();
        let mut level = Execution::level(finished).into_iter();
        Ok(rows
            .into_iter()
            .zip(rest)
            .map(|(row, (execution_id, refusal))| FinishOutcome {
                execution_id: ID(execution_id),
                finished: refusal.is_none(),
                code: refusal.map(str::to_owned),
                execution: row.and_then(|_| level.next()),
            })
            .collect())
    }

    /// Heartbeat: extends the holder's live claim.
    #[graphql(guard = "WorkersOnly")]
    async fn extend_claim(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        worker_id: String,
        timeout_ms: i32,
    ) -> GqlResult<bool> {
        store(ctx)?
            .queue()
            .extend_claim(&execution_id, &worker_id, i64::from(timeout_ms))
            .await
            .gql()
    }

    /// One heartbeat for many claims: extends each live claim `workerId`
    /// holds among `executionIds` (at most 10,000); the others are reported
    /// `extended: false`, unchanged.
    #[graphql(guard = "WorkersOnly")]
    async fn extend_claims(
        &self,
        ctx: &Context<'_>,
        worker_id: String,
        execution_ids: Vec<ID>,
        timeout_ms: i32,
    ) -> GqlResult<Vec<ClaimExtension>> {
        let ids = execution_ids.into_iter().map(|id| id.0).collect();
        let extended = store(ctx)?
            .queue()
            .extend_many(&worker_id, ids, i64::from(timeout_ms))
            .await
            .gql()?;
        Ok(extended
            .into_iter()
            .map(|e| ClaimExtension {
                execution_id: ID(e.execution_id),
                extended: e.expires_at.is_some(),
                expires_at: e.expires_at,
                code: e.code.map(str::to_owned),
            })
            .collect())
    }

    /// The holder releases its claim.
    #[graphql(guard = "WorkersOnly")]
    async fn release_execution(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        worker_id: String,
    ) -> GqlResult<bool> {
        store(ctx)?
            .queue()
            .release_execution(&execution_id, &worker_id)
            .await
            .gql()
    }

    /// Marks active claims past their expiry as expired; returns how many.
    #[graphql(guard = "WorkersOnly")]
    async fn expire_old_claims(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let n = store(ctx)?.queue().expire_old_claims().await.gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    #[graphql(guard = "WorkersOnly")]
    async fn record_recovery(
        &self,
        ctx: &Context<'_>,
        input: RecordRecoveryInput,
    ) -> GqlResult<ExecutionRecovery> {
        let row = store(ctx)?
            .queue()
            .record_recovery(NewRecovery {
                execution_id: input.execution_id.0,
                worker_id: input.worker_id,
                reason: input.reason,
                previous_status: input.previous_status,
                previous_worker_id: input.previous_worker_id,
            })
            .await
            .gql()?;
        Ok(row.into())
    }

    /// A named lease: acquired when free, expired, or already yours (renews).
    #[graphql(guard = "WorkersOnly")]
    async fn try_acquire_recovery_lock(
        &self,
        ctx: &Context<'_>,
        lock_id: i32,
        holder_id: String,
        ttl_ms: i32,
    ) -> GqlResult<bool> {
        store(ctx)?
            .queue()
            .try_acquire_recovery_lock(i64::from(lock_id), &holder_id, i64::from(ttl_ms))
            .await
            .gql()
    }

    /// Frees a lease, only for its holder.
    #[graphql(guard = "WorkersOnly")]
    async fn release_recovery_lock(
        &self,
        ctx: &Context<'_>,
        lock_id: i32,
        holder_id: String,
    ) -> GqlResult<bool> {
        store(ctx)?
            .queue()
            .release_recovery_lock(i64::from(lock_id), &holder_id)
            .await
            .gql()
    }
}
