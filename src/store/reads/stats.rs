//! Statistics: a run's counts, and the queue's depth for `/metrics`.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::Reads;
use crate::store::db::{validate, Scope, StoreResult};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionStats {
    pub total: i64,
    pub created: i64,
    pub running: i64,
    pub paused: i64,
    pub completed: i64,
    pub failed: i64,
    pub stopped: i64,
    pub max_depth: i64,
    pub first_created_at: Option<DateTime<Utc>>,
    pub last_completed_at: Option<DateTime<Utc>>,
    /// completed ÷ minutes between first createdAt and last completedAt.
    pub completed_per_minute: Option<f64>,
}

#[derive(FromQueryResult)]
struct StatsRow {
    total: i64,
    created: Option<i64>,
    running: Option<i64>,
    paused: Option<i64>,
    completed: Option<i64>,
    failed: Option<i64>,
    stopped: Option<i64>,
    max_depth: Option<i64>,
    first_created_at: Option<DateTime<Utc>>,
    last_completed_at: Option<DateTime<Utc>>,
}

/// Claimable executions (CREATED without a lease), counted up to a bound.
#[derive(Clone, Debug, Default)]
pub struct QueueDepth {
    /// At most the bound asked for.
    pub total: i64,
    /// The fullest flows first, within the same bounded read.
    pub by_flow: Vec<(String, i64)>,
}

impl Reads {
    /// `getExecutionStats` over a root's descendants (root excluded), as one
    /// aggregate statement.
    pub async fn get_execution_stats(
        &self,
        root_execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<ExecutionStats> {
        validate::id("rootExecutionId", root_execution_id)?;
        let stats = self.db.stmt(
            self.db.sql().execution_stats,
            [root_execution_id.to_owned().into(), scope.param()],
        );
        let Some(row) = self.db.read_model::<StatsRow>(stats).await? else {
            return Ok(ExecutionStats::default());
        };
        let completed = row.completed.unwrap_or(0);
        let completed_per_minute = match (row.first_created_at, row.last_completed_at) {
            (Some(first), Some(last)) if last > first => {
                let minutes = (last - first).num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6;
                Some(completed as f64 / minutes)
            }
            _ => None,
        };
        Ok(ExecutionStats {
            total: row.total,
            created: row.created.unwrap_or(0),
            running: row.running.unwrap_or(0),
            paused: row.paused.unwrap_or(0),
            completed,
            failed: row.failed.unwrap_or(0),
            stopped: row.stopped.unwrap_or(0),
            max_depth: row.max_depth.unwrap_or(0),
            first_created_at: row.first_created_at,
            last_completed_at: row.last_completed_at,
            completed_per_minute,
        })
    }

    /// Reads at most `bound` entries of the claimable index (so a scrape
    /// costs the same whatever the backlog) and groups them by flow, on the
    /// primary. Leases that lapsed but have not been put back yet are not
    /// counted.
    pub async fn queue_depth(&self, bound: i64, flows: i64) -> StoreResult<QueueDepth> {
        let depth = self
            .db
            .stmt(self.db.sql().queue_depth, [bound.into(), flows.into()]);
        let rows = self.db.primary().query_all(depth).await?;
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
