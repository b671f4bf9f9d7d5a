use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Runs under control: `paused` marks an execution under a paused one
/// (from `pauseExecution` to `resumeExecution`, whatever its status); one
/// created under a paused parent is created PAUSED. The column has a
/// constant default, so no row is rewritten.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let no = match db.get_database_backend() {
            DbBackend::Postgres => "false",
            _ => "0",
        };
        db.execute_unprepared(&format!(
            "ALTER TABLE executions ADD COLUMN paused BOOLEAN NOT NULL DEFAULT {no}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE executions DROP COLUMN paused")
            .await?;
        Ok(())
    }
}
