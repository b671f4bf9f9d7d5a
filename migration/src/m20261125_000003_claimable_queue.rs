use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Claimability lives on the execution row: `lease_expires_at` mirrors the
/// active claim's expiry (null when no claim is active). The work queue's
/// partial indexes hold only CREATED rows without a lease, so a pull reads
/// about `limit` index entries however many executions are leased. Rows whose
/// lease lapsed are found through an index of leased rows by expiry (reading
/// only the lapsed ones) and put back in the queue.
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
            format!("ALTER TABLE executions ADD COLUMN lease_expires_at {timestamp} NULL"),
            "UPDATE executions SET lease_expires_at = (SELECT c.expires_at FROM execution_claims c \
             WHERE c.execution_id = executions.id AND c.status = 'active') \
             WHERE id IN (SELECT execution_id FROM execution_claims WHERE status = 'active')"
                .into(),
            "DROP INDEX IF EXISTS executions_created_queue_by_flow".into(),
            "CREATE INDEX executions_claimable ON executions (created_at, id) \
             WHERE status = 'created' AND lease_expires_at IS NULL"
                .into(),
            "CREATE INDEX executions_claimable_by_flow ON executions (flow_id, created_at, id) \
             WHERE status = 'created' AND lease_expires_at IS NULL"
                .into(),
            "CREATE INDEX executions_lapsing ON executions (lease_expires_at) \
             WHERE status = 'created' AND lease_expires_at IS NOT NULL"
                .into(),

        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS executions_lapsing",
            "DROP INDEX IF EXISTS executions_claimable_by_flow",
            "DROP INDEX IF EXISTS executions_claimable",
            "CREATE INDEX executions_created_queue_by_flow ON executions (flow_id, created_at, id) WHERE status = 'created'",
            "ALTER TABLE executions DROP COLUMN lease_expires_at",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
