use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Flow timeouts: `deadline_at` is when a run whose root has
/// `options.execution.flowTimeoutMs` is to be looked at by the deadline
/// timer (set on roots only: their start, or creation, plus the timeout).
/// `executions_deadlines` holds only unfinished roots with a deadline, in
/// deadline order, so the timer reads the runs that are due and nothing
/// else. The column is null on every existing row, so none is rewritten.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let timestamp = match db.get_database_backend() {
            DbBackend::Postgres => "TIMESTAMPTZ",
            _ => "TEXT",
        };
        for sql in [
            format!("ALTER TABLE executions ADD COLUMN deadline_at {timestamp} NULL"),
            "CREATE INDEX executions_deadlines ON executions (deadline_at) \
             WHERE deadline_at IS NOT NULL AND status IN ('created', 'running', 'paused')"
                .into(),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS executions_deadlines",
            "ALTER TABLE executions DROP COLUMN deadline_at",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
