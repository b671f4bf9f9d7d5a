use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUS_CHECK: &str =
    "status IN ('created', 'running', 'paused', 'completed', 'failed', 'stopped')";
const CLAIM_STATUS_CHECK: &str = "status IN ('active', 'released', 'expired')";

/// Types that differ between the backends; everything else is shared SQL.
struct Types {
    timestamp: &'static str,
    json: &'static str,
    serial_pk: &'static str,
}

fn types(backend: DbBackend) -> Types {
    match backend {
        DbBackend::Postgres => Types {
            timestamp: "TIMESTAMPTZ",
            json: "JSONB",
            serial_pk: "BIGSERIAL PRIMARY KEY",
        },
        // SQLite stores timestamps as RFC 3339 text in UTC; every value is
        // written by the server with the same format, so text order is time order.
        _ => Types {
            timestamp: "TEXT",
            json: "TEXT",
            serial_pk: "INTEGER PRIMARY KEY AUTOINCREMENT",
        },
    }
}

fn up_statements(backend: DbBackend) -> Vec<String> {
    let Types {
        timestamp: ts,
        json,
        serial_pk,
    } = types(backend);
    vec![
        format!(
            "CREATE TABLE executions (
                id TEXT PRIMARY KEY,
                flow_id TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                root_execution_id TEXT NOT NULL,
                parent_execution_id TEXT NULL REFERENCES executions (id) ON DELETE CASCADE,
                status TEXT NOT NULL DEFAULT 'created' CHECK ({STATUS_CHECK}),
                execution_depth INTEGER NOT NULL DEFAULT 0 CHECK (execution_depth >= 0),
                created_at {ts} NOT NULL,
                updated_at {ts} NOT NULL,
                started_at {ts} NULL,
                completed_at {ts} NULL,
                error_message TEXT NULL,
                error_node_id TEXT NULL,
                options {json} NULL,
                integration {json} NULL,
                external_events {json} NULL,
                failure_count INTEGER NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
                last_failure_reason TEXT NULL,
                last_failure_at {ts} NULL,
                processing_started_at {ts} NULL,
                processing_worker_id TEXT NULL
            )"
        ),
        "CREATE INDEX executions_parent_feed ON executions (parent_execution_id, created_at DESC, id DESC)".into(),
        "CREATE INDEX executions_root_feed ON executions (root_execution_id, created_at DESC, id DESC)".into(),
        "CREATE INDEX executions_flow_roots ON executions (flow_id, execution_depth, created_at DESC, id DESC)".into(),
        // Work queue for claimNextExecutions and recovery: only CREATED rows, oldest first.
        "CREATE INDEX executions_created_queue ON executions (created_at, id) WHERE status = 'created'".into(),
        "CREATE INDEX executions_running ON executions (status) WHERE status = 'running'".into(),
        format!(
            "CREATE TABLE execution_claims (
                execution_id TEXT PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
                worker_id TEXT NOT NULL,
                claimed_at {ts} NOT NULL,
                expires_at {ts} NOT NULL,
                heartbeat_at {ts} NOT NULL,
                status TEXT NOT NULL DEFAULT 'active' CHECK ({CLAIM_STATUS_CHECK})
            )"
        ),
        "CREATE INDEX execution_claims_status_expiry ON execution_claims (status, expires_at)".into(),
        format!(
            "CREATE TABLE execution_recovery (
                id {serial_pk},
                execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
                recovered_at {ts} NOT NULL,
                recovered_by_worker TEXT NOT NULL,
                recovery_reason TEXT NOT NULL,
                previous_status TEXT NULL,
                previous_worker_id TEXT NULL
            )"
        ),
        "CREATE INDEX execution_recovery_by_execution ON execution_recovery (execution_id, recovered_at DESC, id DESC)".into(),
        format!(
            "CREATE TABLE recovery_locks (
                lock_id BIGINT PRIMARY KEY,
                holder_id TEXT NOT NULL,
                acquired_at {ts} NOT NULL,
                expires_at {ts} NOT NULL
            )"
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in up_statements(db.get_database_backend()) {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in [
            "recovery_locks",
            "execution_recovery",
            "execution_claims",
            "executions",
        ] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
