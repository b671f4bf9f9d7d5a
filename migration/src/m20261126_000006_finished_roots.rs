use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Run retention (`EXECSTORE_RUN_RETENTION`) walks finished roots oldest
/// first by when they finished: this index holds only those, so a round
/// reads the runs it may delete and not the whole table.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX executions_finished_roots ON executions (completed_at, id) \
                 WHERE execution_depth = 0 AND status IN ('completed', 'failed', 'stopped')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS executions_finished_roots")
            .await?;
        Ok(())
    }
}
