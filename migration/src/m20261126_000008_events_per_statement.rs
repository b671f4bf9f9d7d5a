use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// PostgreSQL logs inserts and updates of `executions` once per statement
/// instead of once per row: the same one event row per changed execution,
/// written by a single `INSERT … SELECT` over the statement's transition
/// table.
///
/// Why: a row-level PL/pgSQL trigger starts an executor for its `INSERT` on
/// every row; for a 1,000-row `createExecutions` that was a quarter of
/// PostgreSQL's time (profiled). The log's contents are unchanged: one row
/// per change, in the changing transaction, numbered in the order the
/// statement changed the rows.
///
/// An upsert (`INSERT … ON CONFLICT DO UPDATE`) fires both: the insert
/// trigger sees only the inserted rows, the update trigger only the updated
/// ones, so each change keeps its kind. PostgreSQL fires the update trigger
/// first, so within one upsert the `updated` events come before the
/// `created` ones (the row trigger interleaved them in input order). No
/// reader depends on the order of different executions' events within a
/// transaction, and a parent still comes before its children: an existing
/// row is never the child of a new one. SQLite keeps its row triggers (it
/// has no transition tables, and its triggers run no executor per row).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 5] = [
    "DROP TRIGGER IF EXISTS executions_logged ON executions",
    "CREATE FUNCTION execstore_log_execution_changes() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
         SELECT root_execution_id, id, owner_id,
                CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'updated' END
         FROM changed;
         RETURN NULL;
     END
     $$",
    "CREATE TRIGGER executions_logged_insert AFTER INSERT ON executions
     REFERENCING NEW TABLE AS changed
     FOR EACH STATEMENT EXECUTE FUNCTION execstore_log_execution_changes()",
    "CREATE TRIGGER executions_logged_update AFTER UPDATE ON executions
     REFERENCING NEW TABLE AS changed
     FOR EACH STATEMENT EXECUTE FUNCTION execstore_log_execution_changes()",
    "DROP FUNCTION IF EXISTS execstore_log_execution_change()",
];

const DOWN: [&str; 5] = [
    "DROP TRIGGER IF EXISTS executions_logged_insert ON executions",
    "DROP TRIGGER IF EXISTS executions_logged_update ON executions",
    "DROP FUNCTION IF EXISTS execstore_log_execution_changes()",
    "CREATE FUNCTION execstore_log_execution_change() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
         VALUES (NEW.root_execution_id, NEW.id, NEW.owner_id,
                 CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'updated' END);
         RETURN NULL;
     END
     $$",
    "CREATE TRIGGER executions_logged AFTER INSERT OR UPDATE ON executions
     FOR EACH ROW EXECUTE FUNCTION execstore_log_execution_change()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            for sql in UP {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            for sql in DOWN {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }
}
