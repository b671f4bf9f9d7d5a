use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Reads of a big run by status, and the flows list per owner:
/// - `childFeed(status:)` / `directChildFeed(status:)` read, for each status
///   asked for, one range of a run's (or a parent's) executions in that
///   status, newest first: the cost follows the page, not the run.
/// - `flows` for one owner walks that owner's roots by flow (a skip scan)
///   and probes each flow's newest run. (For every owner, the existing
///   indexes of roots by flow serve the same walk.)
#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 3] = [
    (
        "executions_root_feed_by_status",
        "ON executions (root_execution_id, status, created_at DESC, id DESC)",
    ),
    (
        "executions_parent_feed_by_status",
        "ON executions (parent_execution_id, status, created_at DESC, id DESC)",
    ),
    (
        "executions_owner_roots",
        "ON executions (owner_id, flow_id, created_at DESC, id DESC) WHERE execution_depth = 0",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, definition) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {name} {definition}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }
}
