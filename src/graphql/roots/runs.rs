//! Runs: executions created, updated and deleted (the store's `runs`).

use async_graphql::{Context, Object, ID};

use crate::graphql::error::{GqlResult, OrGql};
use crate::graphql::guards::WorkersOnly;
use crate::graphql::types::{CreateExecutionInput, Execution, UpdateExecutionStatusInput};
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
}
