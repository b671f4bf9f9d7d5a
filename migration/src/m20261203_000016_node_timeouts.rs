use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Node timeouts: `node_timeout_ms` is a run's `nodeTimeoutMs` (its root's
/// `options.execution`, copied down to the executions below the root, which
/// is its run's coordinator and not capped); `node_deadline_at` is set by a
/// claim of such an execution to the claim's start plus the timeout, caps
/// the claim and its lease (no heartbeat reaches past it), and is cleared
/// when the claim ends. `executions_node_deadlines` holds the unfinished
/// executions that have one, in deadline order, for the deadline timer,
/// which takes back the executions held past theirs as retries.
///
/// Existing runs whose root sets `nodeTimeoutMs` get it copied down to their
/// unfinished executions; claims made before the migration are not capped
/// (their next claim is).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (timestamp, timeout_of_root) = match db.get_database_backend() {
            DbBackend::Postgres => (
                "TIMESTAMPTZ",
                "CASE WHEN jsonb_typeof(r.options -> 'execution' -> 'nodeTimeoutMs') = 'number' \
                 AND (r.options -> 'execution' ->> 'nodeTimeoutMs') ~ '^[0-9]{1,12}$' \
                 THEN CAST(r.options -> 'execution' ->> 'nodeTimeoutMs' AS BIGINT) END",
            ),
            _ => (
                "TEXT",
                "CASE WHEN json_type(r.options, '$.execution.nodeTimeoutMs') = 'integer' \
                 THEN json_extract(r.options, '$.execution.nodeTimeoutMs') END",
            ),
        };
        let unfinished = "status NOT IN ('completed', 'failed', 'stopped')";
        for sql in [
            "ALTER TABLE executions ADD COLUMN node_timeout_ms BIGINT NULL".to_owned(),
            format!("ALTER TABLE executions ADD COLUMN node_deadline_at {timestamp} NULL"),
            format!(
                "CREATE INDEX executions_node_deadlines ON executions (node_deadline_at) \
                 WHERE node_deadline_at IS NOT NULL AND {unfinished}"
            ),
            format!(
                "UPDATE executions SET node_timeout_ms = (\
                 SELECT {timeout_of_root} FROM executions r \
                 WHERE r.id = executions.root_execution_id AND r.options IS NOT NULL) \
                 WHERE {unfinished} AND parent_execution_id IS NOT NULL AND root_execution_id IN (\
                 SELECT id FROM executions WHERE parent_execution_id IS NULL AND {unfinished})"
            ),
            "UPDATE executions SET node_timeout_ms = NULL \
             WHERE node_timeout_ms IS NOT NULL AND node_timeout_ms < 1"
                .to_owned(),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS executions_node_deadlines",
            "ALTER TABLE executions DROP COLUMN node_deadline_at",
            "ALTER TABLE executions DROP COLUMN node_timeout_ms",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
