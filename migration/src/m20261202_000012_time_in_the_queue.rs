use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Time in the queue: when an execution may first be handed out (`run_at`)
/// and its priority (higher first).
///
/// - `run_at` is null when the execution is due at its creation (every row
///   made before this migration, and every create without `runAt`): its
///   due time is `COALESCE(run_at, created_at)`. No row is rewritten, so the
///   migration takes the time of its index builds on a large table, and
///   logs no event.
/// - The fresh queue (`executions_claimable`, `_by_flow`) is read in
///   hand-out order: priority descending, then the due time, then id.
/// - An execution not due yet (scheduled for later, or waiting out a retry's
///   backoff) is kept out of the fresh queue by its lease: `lease_expires_at
///   = run_at` until it is due. Those are found by `executions_waiting`, in
///   due order, by the timer that puts them in the queue when they are due;
///   pulls never step over them.
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
            format!("ALTER TABLE executions ADD COLUMN run_at {timestamp} NULL"),
            "ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0 \
             CHECK (priority BETWEEN -100 AND 100)"
                .into(),
            "DROP INDEX IF EXISTS executions_claimable".into(),
            "CREATE INDEX executions_claimable ON executions \
             (priority DESC, (COALESCE(run_at, created_at)), id) \
             WHERE status = 'created' AND lease_expires_at IS NULL"
                .into(),
            "DROP INDEX IF EXISTS executions_claimable_by_flow".into(),
            "CREATE INDEX executions_claimable_by_flow ON executions \
             (flow_id, priority DESC, (COALESCE(run_at, created_at)), id) \
             WHERE status = 'created' AND lease_expires_at IS NULL"
                .into(),
            "CREATE INDEX executions_waiting ON executions (lease_expires_at) \
             WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at = run_at"
                .into(),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS executions_waiting",
            "DROP INDEX IF EXISTS executions_claimable_by_flow",
            "DROP INDEX IF EXISTS executions_claimable",
            "CREATE INDEX executions_claimable ON executions (created_at, id) \
             WHERE status = 'created' AND lease_expires_at IS NULL",
            "CREATE INDEX executions_claimable_by_flow ON executions (flow_id, created_at, id) \
             WHERE status = 'created' AND lease_expires_at IS NULL",
            "ALTER TABLE executions DROP COLUMN priority",
            "ALTER TABLE executions DROP COLUMN run_at",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
