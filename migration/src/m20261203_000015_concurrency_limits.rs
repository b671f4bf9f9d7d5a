use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Concurrency limits, per run and per key. An execution limited by its run
/// (its root's `options.execution.maxConcurrency`, copied down the run as
/// `max_concurrency`) or by its `concurrency_key` (a row of
/// `concurrency_limits`) is handed out only once it holds a slot of each:
///
/// - `waiting` says what it waits for (0 nothing, 1 a slot of its run, 2 a
///   slot of its key). A waiting execution is kept out of the fresh queue by
///   a lease that never lapses (9999-12-31T23:59:59Z), so pulls never step
///   over it; `executions_run_waiters` and `executions_key_waiters` hold
///   the waiting ones of each run and key in hand-out order, for the
///   admission that follows every freed slot.
/// - `run_slot` and `key_slot` say it holds one. The slots in use are
///   counted, never stored: an unfinished execution holding one is in
///   `executions_run_holders` (or `_key_holders`), and leaves it when it
///   finishes, is cancelled or deleted, whatever path did it.
///
/// Existing runs whose root sets `maxConcurrency` get it copied down; their
/// queued executions wait for a slot (the janitor's first round admits what
/// the limit leaves room for) and the others, held or running, are counted
/// as holding one (a run may be over its limit until they finish; nothing
/// more is handed out meanwhile).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (no, never, limit_of_root) = match db.get_database_backend() {
            DbBackend::Postgres => (
                "false",
                "TIMESTAMPTZ '9999-12-31 23:59:59+00'",
                "CASE WHEN jsonb_typeof(r.options -> 'execution' -> 'maxConcurrency') = 'number' \
                 AND (r.options -> 'execution' ->> 'maxConcurrency') ~ '^[0-9]{1,7}$' \
                 THEN CAST(r.options -> 'execution' ->> 'maxConcurrency' AS INTEGER) END",
            ),
            _ => (
                "0",
                "'9999-12-31T23:59:59+00:00'",
                "CASE WHEN json_type(r.options, '$.execution.maxConcurrency') = 'integer' \
                 THEN json_extract(r.options, '$.execution.maxConcurrency') END",
            ),
        };
        let unfinished = "status NOT IN ('completed', 'failed', 'stopped')";
        let queued = "status IN ('created', 'paused') \
                      AND (lease_expires_at IS NULL OR COALESCE(lease_expires_at = run_at, FALSE))";
        for sql in [
            "ALTER TABLE executions ADD COLUMN concurrency_key TEXT NULL".to_owned(),
            "ALTER TABLE executions ADD COLUMN max_concurrency INTEGER NULL".to_owned(),
            "ALTER TABLE executions ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0 \
             CHECK (waiting IN (0, 1, 2))"
                .to_owned(),
            format!("ALTER TABLE executions ADD COLUMN run_slot BOOLEAN NOT NULL DEFAULT {no}"),
            format!("ALTER TABLE executions ADD COLUMN key_slot BOOLEAN NOT NULL DEFAULT {no}"),
            "CREATE TABLE concurrency_limits (\
             key TEXT PRIMARY KEY, \
             max_running INTEGER NOT NULL CHECK (max_running >= 1))"
                .to_owned(),
            "CREATE INDEX executions_run_waiters ON executions \
             (root_execution_id, priority DESC, (COALESCE(run_at, created_at)), id) \
             WHERE waiting = 1 AND status = 'created'"
                .to_owned(),
            "CREATE INDEX executions_key_waiters ON executions \
             (concurrency_key, priority DESC, (COALESCE(run_at, created_at)), id) \
             WHERE waiting = 2 AND status = 'created'"
                .to_owned(),
            format!(
                "CREATE INDEX executions_run_holders ON executions (root_execution_id) \
                 WHERE run_slot AND {unfinished}"
            ),
            format!(
                "CREATE INDEX executions_key_holders ON executions (concurrency_key) \
                 WHERE key_slot AND {unfinished}"
            ),
            format!(
                "CREATE INDEX executions_by_concurrency_key ON executions (concurrency_key) \
                 WHERE concurrency_key IS NOT NULL AND {unfinished}"
            ),
            // Runs made before: the limit copied down, the unfinished counted.
            format!(
                "UPDATE executions SET max_concurrency = (\
                 SELECT {limit_of_root} FROM executions r \
                 WHERE r.id = executions.root_execution_id AND r.options IS NOT NULL) \
                 WHERE {unfinished} AND root_execution_id IN (\
                 SELECT id FROM executions WHERE parent_execution_id IS NULL AND {unfinished})"
            ),
            "UPDATE executions SET max_concurrency = NULL \
             WHERE max_concurrency IS NOT NULL AND max_concurrency < 1"
                .to_owned(),
            // Their queued children (not held) wait for a slot, admitted by
            // the janitor's first round; the others hold one.
            format!(
                "UPDATE executions SET \
                 waiting = CASE WHEN {queued} THEN 1 ELSE 0 END, \
                 run_slot = NOT ({queued}), \
                 lease_expires_at = CASE WHEN status = 'created' AND {queued} THEN {never} \
                 ELSE lease_expires_at END \
                 WHERE max_concurrency IS NOT NULL AND parent_execution_id IS NOT NULL AND {unfinished}"
            ),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS executions_by_concurrency_key",
            "DROP INDEX IF EXISTS executions_key_holders",
            "DROP INDEX IF EXISTS executions_run_holders",
            "DROP INDEX IF EXISTS executions_key_waiters",
            "DROP INDEX IF EXISTS executions_run_waiters",
            "DROP TABLE IF EXISTS concurrency_limits",
            "ALTER TABLE executions DROP COLUMN key_slot",
            "ALTER TABLE executions DROP COLUMN run_slot",
            "ALTER TABLE executions DROP COLUMN waiting",
            "ALTER TABLE executions DROP COLUMN max_concurrency",
            "ALTER TABLE executions DROP COLUMN concurrency_key",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
