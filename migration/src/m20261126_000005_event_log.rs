use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The event log that live subscriptions read: one row per change of an
/// execution, appended in the same transaction as the change.
///
/// Inserts and updates of `executions`, claims marked expired and recorded
/// recoveries are logged by triggers, so no write path can forget its event
/// and nothing is logged that was not committed. Deletions (whole subtrees,
/// parents first) are appended by `ExecutionStore::delete` in the deleting
/// transaction.
///
/// A position is `(tx, seq)`, the order readers follow:
/// - PostgreSQL: `tx` is the writing transaction's id. Readers only read
///   events whose `tx` is below the oldest transaction still in progress
///   (`pg_snapshot_xmin`), so an event can never appear later *behind* a
///   position a reader has passed (a plain sequence would: numbers are taken
///   in statement order, commits land in another).
/// - SQLite: one writer at a time, so `seq` alone is commit order; `tx` is 0.
///
/// `event_log_state` holds the last position the janitor pruned: a cursor
/// before it may have lost events and is refused (EVENTS_EXPIRED).
#[derive(DeriveMigrationName)]
pub struct Migration;

fn up_statements(backend: DbBackend) -> Vec<&'static str> {
    match backend {
        DbBackend::Postgres => vec![
            "CREATE TABLE execution_events (
                tx BIGINT NOT NULL DEFAULT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT),
                seq BIGSERIAL,
                root_execution_id TEXT NOT NULL,
                execution_id TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
                logged_at_ms BIGINT NOT NULL
                    DEFAULT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT),
                PRIMARY KEY (tx, seq)
            )",
            "CREATE INDEX execution_events_by_root ON execution_events (root_execution_id, tx, seq)",
            "CREATE TABLE event_log_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                pruned_tx BIGINT NOT NULL,
                pruned_seq BIGINT NOT NULL
            )",
            "INSERT INTO event_log_state (id, pruned_tx, pruned_seq) VALUES (1, 0, 0)",
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
            // Changes that leave the execution row alone: a claim marked
            // expired, a recovery recorded.
            "CREATE FUNCTION execstore_log_related_change() RETURNS trigger
             LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
                 SELECT root_execution_id, id, owner_id, 'updated'
                 FROM executions WHERE id = NEW.execution_id;
                 RETURN NULL;
             END
             $$",
            "CREATE TRIGGER execution_claims_logged_expiry AFTER UPDATE OF status ON execution_claims
             FOR EACH ROW WHEN (NEW.status = 'expired' AND OLD.status <> 'expired')
             EXECUTE FUNCTION execstore_log_related_change()",
            "CREATE TRIGGER execution_recovery_logged AFTER INSERT ON execution_recovery
             FOR EACH ROW EXECUTE FUNCTION execstore_log_related_change()",
        ],
        _ => vec![
            // AUTOINCREMENT: a number is never handed out twice, not even
            // after the janitor emptied the table (a reused number could sit
            // behind a reader's cursor).
            "CREATE TABLE execution_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                tx INTEGER NOT NULL DEFAULT 0,
                root_execution_id TEXT NOT NULL,
                execution_id TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
                logged_at_ms INTEGER NOT NULL
                    DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
            )",
            "CREATE INDEX execution_events_by_root ON execution_events (root_execution_id, tx, seq)",
            "CREATE TABLE event_log_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                pruned_tx INTEGER NOT NULL,
                pruned_seq INTEGER NOT NULL
            )",
            "INSERT INTO event_log_state (id, pruned_tx, pruned_seq) VALUES (1, 0, 0)",
            "CREATE TRIGGER executions_logged_insert AFTER INSERT ON executions
             BEGIN
                 INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
                 VALUES (NEW.root_execution_id, NEW.id, NEW.owner_id, 'created');
             END",
            "CREATE TRIGGER executions_logged_update AFTER UPDATE ON executions
             BEGIN
                 INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
                 VALUES (NEW.root_execution_id, NEW.id, NEW.owner_id, 'updated');
             END",
            "CREATE TRIGGER execution_claims_logged_expiry AFTER UPDATE OF status ON execution_claims
             FOR EACH ROW WHEN NEW.status = 'expired' AND OLD.status <> 'expired'
             BEGIN
                 INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
                 SELECT root_execution_id, id, owner_id, 'updated'
                 FROM executions WHERE id = NEW.execution_id;
             END",
            "CREATE TRIGGER execution_recovery_logged AFTER INSERT ON execution_recovery
             BEGIN
                 INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
                 SELECT root_execution_id, id, owner_id, 'updated'
                 FROM executions WHERE id = NEW.execution_id;
             END",
        ],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in up_statements(db.get_database_backend()) {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match db.get_database_backend() {
            DbBackend::Postgres => &[
                "DROP TRIGGER IF EXISTS executions_logged ON executions",
                "DROP TRIGGER IF EXISTS execution_claims_logged_expiry ON execution_claims",
                "DROP TRIGGER IF EXISTS execution_recovery_logged ON execution_recovery",
                "DROP FUNCTION IF EXISTS execstore_log_execution_change()",
                "DROP FUNCTION IF EXISTS execstore_log_related_change()",
                "DROP TABLE IF EXISTS event_log_state",
                "DROP TABLE IF EXISTS execution_events",
            ],
            _ => &[
                "DROP TRIGGER IF EXISTS executions_logged_insert",
                "DROP TRIGGER IF EXISTS executions_logged_update",
                "DROP TRIGGER IF EXISTS execution_claims_logged_expiry",
                "DROP TRIGGER IF EXISTS execution_recovery_logged",
                "DROP TABLE IF EXISTS event_log_state",
                "DROP TABLE IF EXISTS execution_events",
            ],
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
