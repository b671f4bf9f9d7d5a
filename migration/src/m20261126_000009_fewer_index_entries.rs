use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Fewer index entries per written row: every insert, and every update
/// that changes an indexed column (a claim, a finish), writes one entry into
/// each index whose condition the row meets, so an index that no read needs
/// for that row is pure write cost. Profiled on a 1,000-row
/// `createExecutions`, index maintenance was two thirds of PostgreSQL's time.
///
/// - The indexes of children by parent hold only executions that have a
///   parent: every read of them names a parent (`parent_execution_id = …`,
///   which implies the condition), and a root's entry under NULL was never
///   read.
/// - The roots of a flow by time (`executions_flow_roots`) go: the roots of
///   a flow by status and time (`executions_flow_roots_by_status`) serve
///   every read of them — the flows' skip scan (its prefix), a flow's
///   newest run and its runs newest first (one range per status, merged).
/// - The run's executions by time (`executions_root_feed`) goes: the run's
///   executions by status and time (`executions_root_feed_by_status`) serve
///   every read of a run — whole (its prefix) or newest first (one range per
///   status, merged; see `newest_first` in the store).
/// - The claims index holds live claims only (`status = 'active'`), by
///   expiry: it serves the expiry sweep and `activeClaims` (a read of one
///   claim goes by primary key), and a released or expired claim's entry
///   was never read.
///
/// On a large table this migration holds writes to `executions` and
/// `execution_claims` while it builds the new indexes (PostgreSQL builds
/// about a million rows' index in a few seconds): run it at a quiet
/// moment, or build the three indexes beforehand with `CREATE INDEX
/// CONCURRENTLY` under temporary names and swap them in.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 8] = [
    "DROP INDEX IF EXISTS executions_root_feed",
    "DROP INDEX IF EXISTS executions_parent_feed",
    "CREATE INDEX executions_parent_feed ON executions (parent_execution_id, created_at DESC, id DESC) \
     WHERE parent_execution_id IS NOT NULL",
    "DROP INDEX IF EXISTS executions_parent_feed_by_status",
    "CREATE INDEX executions_parent_feed_by_status ON executions \
     (parent_execution_id, status, created_at DESC, id DESC) WHERE parent_execution_id IS NOT NULL",
    "DROP INDEX IF EXISTS executions_flow_roots",
    "DROP INDEX IF EXISTS execution_claims_status_expiry",
    "CREATE INDEX execution_claims_live ON execution_claims (expires_at) WHERE status = 'active'",
];

const DOWN: [&str; 8] = [
    "DROP INDEX IF EXISTS execution_claims_live",
    "CREATE INDEX execution_claims_status_expiry ON execution_claims (status, expires_at)",
    "CREATE INDEX executions_flow_roots ON executions (flow_id, execution_depth, created_at DESC, id DESC)",
    "DROP INDEX IF EXISTS executions_parent_feed_by_status",
    "CREATE INDEX executions_parent_feed_by_status ON executions \
     (parent_execution_id, status, created_at DESC, id DESC)",
    "DROP INDEX IF EXISTS executions_parent_feed",
    "CREATE INDEX executions_parent_feed ON executions (parent_execution_id, created_at DESC, id DESC)",
    "CREATE INDEX executions_root_feed ON executions (root_execution_id, created_at DESC, id DESC)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in UP {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in DOWN {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
