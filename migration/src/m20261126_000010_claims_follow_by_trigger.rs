use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// PostgreSQL: a deleted execution's claims go by a statement trigger on
/// `executions` instead of the foreign key from `execution_claims`.
///
/// Why: the foreign key checked every inserted claim with a query of its
/// own (`SELECT 1 FROM executions … FOR KEY SHARE`), queued and run as a
/// trigger per row: 120,000 checks in the queue bench's batched round,
/// about 3 % of PostgreSQL's time, for a fact no statement can break. Every
/// statement that writes a claim takes it from the execution row it has
/// just locked (`FROM executions … FOR UPDATE`, or the pull's `SKIP
/// LOCKED`), so a claim is only ever written for an execution that exists
/// and cannot go before the claim is committed.
///
/// What the key also did, the trigger keeps: deleting executions (a
/// subtree — the parent key's cascade is a delete too, and fires it — or a
/// run retention takes) deletes their claims in the same statement. A claim
/// committed while the delete waited for the execution's row lock is seen:
/// at READ COMMITTED the trigger's delete takes a snapshot of its own, and
/// retention, which runs at REPEATABLE READ, fails with a serialization
/// error when a row it deletes was changed after its snapshot (a claim
/// always updates its execution) and tries again. It reads the deleted ids
/// as an array so that its plan, made once per connection, probes the
/// claims' primary key whatever the size of the first delete it saw.
/// `TRUNCATE executions CASCADE` no longer empties `execution_claims`.
/// SQLite keeps its foreign key: its check is a probe of the primary key
/// inside the same write, not a query per row.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 3] = [
    "ALTER TABLE execution_claims DROP CONSTRAINT execution_claims_execution_id_fkey",
    "CREATE FUNCTION execstore_delete_claims_of_deleted() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         DELETE FROM execution_claims WHERE execution_id = ANY (ARRAY(SELECT id FROM deleted));
         RETURN NULL;
     END
     $$",
    "CREATE TRIGGER execution_claims_follow AFTER DELETE ON executions
     REFERENCING OLD TABLE AS deleted
     FOR EACH STATEMENT EXECUTE FUNCTION execstore_delete_claims_of_deleted()",
];

const DOWN: [&str; 4] = [
    "DROP TRIGGER IF EXISTS execution_claims_follow ON executions",
    "DROP FUNCTION IF EXISTS execstore_delete_claims_of_deleted()",
    "DELETE FROM execution_claims c WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = c.execution_id)",
    "ALTER TABLE execution_claims ADD CONSTRAINT execution_claims_execution_id_fkey
     FOREIGN KEY (execution_id) REFERENCES executions (id) ON DELETE CASCADE",
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
