use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Flow timeouts: `deadline_at` is when a run whose root has
/// `options.execution.flowTimeoutMs` is to be looked at by the deadline
/// timer (set on roots only: their start, or creation, plus the timeout).
/// `executions_deadlines` holds only unfinished roots with a deadline, in
/// deadline order, so the timer reads the runs that are due and nothing
/// else. Existing unfinished roots whose options set `flowTimeoutMs` get
/// `deadline_at = created_at`: the timer looks at each at once and works
/// out its real deadline (no other row is rewritten).
///
/// On a large table the index build holds writes to `executions` for a few
/// seconds: run it at a quiet moment, or build the index beforehand with
/// `CREATE INDEX CONCURRENTLY` (the same definition): it is created only if
/// absent.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (timestamp, has_timeout) = match db.get_database_backend() {
            DbBackend::Postgres => (
                "TIMESTAMPTZ",
                "jsonb_typeof(options -> 'execution') = 'object' \
                 AND (options -> 'execution') ? 'flowTimeoutMs'",
            ),
            _ => (
                "TEXT",
                "json_extract(options, '$.execution.flowTimeoutMs') IS NOT NULL",
            ),
        };
        for sql in [
            format!("ALTER TABLE executions ADD COLUMN deadline_at {timestamp} NULL"),
            format!(
                "UPDATE executions SET deadline_at = created_at \
                 WHERE parent_execution_id IS NULL AND status IN ('created', 'running', 'paused') \
                 AND options IS NOT NULL AND {has_timeout}"
            ),
            "CREATE INDEX IF NOT EXISTS executions_deadlines ON executions (deadline_at) \
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
