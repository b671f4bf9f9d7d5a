//! Runs: executions created, updated and deleted (the store's `runs`).

use async_graphql::{Context, Object, ID};

use crate::graphql::error::{GqlResult, OrGql};
use crate::graphql::guards::WorkersOnly;
use crate::graphql::types::{
    CreateExecutionInput, Execution, ExecutionStatus, UpdateExecutionStatusInput,
};
use crate::graphql::{store, viewer};

#[derive(Default)]
pub struct RunsMutation;

#[Object]
impl RunsMutation {
    /// Creates an execution; idempotent on `id` (same owner: updates status,
    /// options, integration, externalEvents).
    async fn create_execution(
        &self,
        ctx: &Context<'_>,
        input: CreateExecutionInput,
    ) -> GqlResult<Execution> {
        let scope = viewer(ctx)?.scope();
        let created = store(ctx)?
            .runs()
            .create(input.into(), &scope)
            .await
            .gql()?;
        Ok(Execution::single(created))
    }

    /// Creates many executions in one statement (at most 10,000), answered
    /// in input order; all or nothing: one input that `createExecution`
    /// would refuse refuses the whole request and nothing is written. A
    /// parent may be an existing execution or an earlier input.
    async fn create_executions(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<CreateExecutionInput>,
    ) -> GqlResult<Vec<Execution>> {
        let scope = viewer(ctx)?.scope();
        let inputs = inputs.into_iter().map(Into::into).collect();
        let created = store(ctx)?.runs().create_many(inputs, &scope).await.gql()?;
        Ok(Execution::level(created))
    }

    /// Deletes an execution and its whole subtree; true when something was deleted.
    async fn delete_execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<bool> {
        let scope = viewer(ctx)?.scope();
        store(ctx)?.runs().delete(&id, &scope).await.gql()
    }

    async fn update_execution_status(
        &self,
        ctx: &Context<'_>,
        input: UpdateExecutionStatusInput,
    ) -> GqlResult<Execution> {
        let scope = viewer(ctx)?.scope();
        let updated = store(ctx)?
            .runs()
            .update_execution_status(input.into(), &scope)
            .await
            .gql()?;
        Ok(Execution::single(updated))
    }

    #[graphql(guard = "WorkersOnly")]
    async fn update_failure_info(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        failure_count: i32,
        reason: String,
    ) -> GqlResult<bool> {
        let viewer = viewer(ctx)?;
        store(ctx)?
            .runs()
            .update_failure_info(&execution_id, failure_count, &reason, &viewer.scope())
            .await
            .gql()
    }

    /// Cancels an execution and everything below it that is not finished:
    /// they become STOPPED (`completedAt`, `errorMessage` = `reason`), and
    /// from the answer on none of them is handed out or claimable. A worker
    /// holding one learns it at its next heartbeat (`extendClaim` false,
    /// `extendClaims` code `CANCELLED`); its finish is `CONFLICT`. Returns
    /// how many were stopped.
    async fn cancel_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> GqlResult<i32> {
        let scope = viewer(ctx)?.scope();
        let n = store(ctx)?
            .runs()
            .cancel(&id, reason.as_deref(), &scope)
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Pauses an execution and its subtree: they are marked `paused`, their
    /// queued executions become PAUSED and are not handed out (running ones
    /// finish normally), and an execution created under a paused one is
    /// created PAUSED. Returns how many changed.
    async fn pause_execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<i32> {
        let scope = viewer(ctx)?.scope();
        let n = store(ctx)?.runs().pause(&id, &scope).await.gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Resumes a paused subtree: the mark goes, and its PAUSED executions
    /// are claimable again in their old order (priority, `runAt`, id).
    /// Returns how many changed.
    async fn resume_execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<i32> {
        let scope = viewer(ctx)?.scope();
        let n = store(ctx)?.runs().resume(&id, &scope).await.gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Puts a run's executions in the given finished statuses back in the
    /// queue (CREATED, `completedAt` cleared, due now, `failureCount`
    /// kept), in one statement. Returns how many.
    async fn retry_executions(
        &self,
        ctx: &Context<'_>,
        root_execution_id: ID,
        #[graphql(default_with = "vec![ExecutionStatus::Failed]")] status: Vec<ExecutionStatus>,
    ) -> GqlResult<i32> {
        let scope = viewer(ctx)?.scope();
        let statuses: Vec<_> = status.into_iter().map(Into::into).collect();
        let n = store(ctx)?
            .runs()
            .retry_executions(&root_execution_id, &statuses, &scope)
            .await
            .gql()?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}
