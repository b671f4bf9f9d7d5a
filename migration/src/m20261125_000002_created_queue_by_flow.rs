use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// `claimNextExecutions(flowId: …)` walks the CREATED queue of one flow,
/// oldest first; without the flow in the index it would skip every other
/// flow's queued rows first.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX executions_created_queue_by_flow ON executions (flow_id, created_at, id) WHERE status = 'created'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS executions_created_queue_by_flow")
            .await?;
        Ok(())
    }
}
