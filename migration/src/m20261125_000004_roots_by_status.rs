use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// `rootExecutions(status: [...])` reads, for each status asked for, the
/// newest roots of a flow in that status: one index range per status,
/// whatever the other statuses hold.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX executions_flow_roots_by_status ON executions \
                 (flow_id, status, created_at DESC, id DESC) WHERE execution_depth = 0",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS executions_flow_roots_by_status")
            .await?;
        Ok(())
    }
}
