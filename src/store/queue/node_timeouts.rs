//! Node timeouts: an execution of a run whose root sets
//! `options.execution.nodeTimeoutMs` is held at most that long. Its claim is
//! capped at the claim's start plus the timeout (its node deadline: a lease
//! or a heartbeat never reaches past it), and the deadline timer takes it
//! back there as a retry with reason "node timeout", counted against its
//! attempts like any failure (the retry rule decides its backoff, or FAILED
//! when they are spent). The timer reads only the unfinished executions that
//! have a deadline, through their own index.

use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{Finish, Queue};
use crate::store::db::{run, Effects, StoreResult};
use chrono::{DateTime, Utc};
use entity::ExecutionStatus;

/// The failure reason (and error message) of a node timeout.
pub const NODE_TIMEOUT: &str = "node timeout";

#[derive(FromQueryResult)]
struct Overdue {
    id: String,
    worker_id: Option<String>,
}

impl Queue {
    /// The executions held past their node deadline by `at` (500 at a time)
    /// taken back from their holders as retries; how many. A deadline left
    /// by a claim that ended without clearing it (the execution was
    /// released, or its status set by hand) is cleared.
    pub async fn time_out_nodes(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        let read = self.db.stmt(self.db.sql().node_deadlines, [at.into()]);
        let overdue: Vec<Overdue> = run::models(self.db.primary(), read).await?;
        if overdue.is_empty() {
            return Ok(0);
        }
        let items: Vec<Finish> = overdue
            .iter()
            .filter_map(|o| {
                Some(Finish {
                    execution_id: o.id.clone(),
                    worker_id: o.worker_id.clone()?,
                    status: ExecutionStatus::Created,
                    error_message: Some(NODE_TIMEOUT.into()),
                    error_node_id: None,
                    failure_reason: Some(NODE_TIMEOUT.into()),
                    retry_in_ms: None,
                })
            })
            .collect();
        let taken: Vec<String> = self
            .finish_held(items, true)
            .await?
            .into_iter()
            .filter(|o| o.execution.is_some())
            .map(|o| o.execution_id)
            .collect();
        let stale: Vec<String> = overdue
            .into_iter()
            .map(|o| o.id)
            .filter(|id| !taken.contains(id))
            .collect();
        if !stale.is_empty() {
            let clear = self.db.stmt(
                self.db.sql().clear_node_deadlines,
                [run::json_list(&stale).into(), at.into()],
            );
            self.db
                .write(move |w| {
                    Box::pin(async move {
                        w.execute(clear).await?;
                        Ok(((), Effects::logged()))
                    })
                })
                .await?;
        }
        Ok(taken.len() as u64)
    }
}
