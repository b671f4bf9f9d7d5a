//! Readings for the operator (`GET /metrics`): the pool, the queue's depth.

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::sql::Sql;
use super::{ExecutionStore, StoreResult};

#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    /// Connections open now.
    pub size: u32,
    /// Of those, the ones not lent out.
    pub idle: u32,
    pub max: u32,
}

/// Claimable executions (CREATED without a lease), counted up to a bound.
#[derive(Clone, Debug, Default)]
pub struct QueueDepth {
    /// At most the bound asked for.
    pub total: i64,
    /// The fullest flows first, within the same bounded read.
    pub by_flow: Vec<(String, i64)>,
}

impl ExecutionStore {
    pub fn pool_stats(&self) -> PoolStats {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.db {
            DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                of(self.db.get_postgres_connection_pool())
            }
            DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                of(self.db.get_sqlite_connection_pool())
            }
            _ => PoolStats::default(),
        }
    }

    /// Reads at most `bound` entries of the claimable index (so a scrape
    /// costs the same whatever the backlog) and groups them by flow.
    /// Leases that lapsed but have not been put back yet are not counted.
    pub async fn queue_depth(&self, bound: i64, flows: i64) -> StoreResult<QueueDepth> {
        let mut sql = Sql::new("");
        let bound = sql.bind(bound);
        let flows = sql.bind(flows);
        sql.push(&format!(
            "SELECT flow_id, COUNT(*) AS n, CAST(SUM(COUNT(*)) OVER () AS BIGINT) AS total FROM \
             (SELECT flow_id FROM executions WHERE status = 'created' AND lease_expires_at IS NULL \
              ORDER BY created_at, id LIMIT {bound}) q \
             GROUP BY flow_id ORDER BY n DESC, flow_id LIMIT {flows}"
        ));
        let rows = self.db.query_all(sql.build(self.backend())).await?;
        let mut depth = QueueDepth::default();
        for row in rows {
            let flow: String = row.try_get("", "flow_id")?;
            let n: i64 = row.try_get("", "n")?;
            depth.total = row.try_get("", "total")?;
            depth.by_flow.push((flow, n));
        }
        Ok(depth)
    }
}
