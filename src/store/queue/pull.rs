//! `claimNextExecutions`: work pulled from the queue, oldest first.

use chrono::{DateTime, Utc};
use sea_orm::Value;

use super::{expiry, Queue};
use crate::store::db::{
    limits, now, queue_key, run, validate, Effects, HeadStart, QueueKey, StoreResult, Writer,
};
use crate::store::sql::Statements;
use entity::execution::Model as Execution;

/// What one pull is: who, for how long, from which flow, how many.
struct Pull {
    sql: &'static Statements,
    worker: String,
    flow: Option<String>,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
}

impl Queue {
    /// `claimNextExecutions(waitMs:)`: as `claim_next_executions`, but when
    /// nothing is claimable it waits up to `wait` for work to appear and
    /// returns as soon as it has some. Woken by writes of this process and,
    /// on PostgreSQL, by other processes' (through the relay). The wait
    /// holds no database connection. No lost wake-up: the signal is marked
    /// seen *before* each attempt, so work created between an empty attempt
    /// and the wait wakes the waiter at once.
    pub async fn claim_next_executions_waiting(
        &self,
        worker_id: &str,
        timeout_ms: i64,
        flow_id: Option<&str>,
        limit: i64,
        wait: std::time::Duration,
    ) -> StoreResult<Vec<Execution>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut work = self.db.bus().watch_work();
        loop {
            work.borrow_and_update();
            let claimed = self
                .claim_next_executions(worker_id, timeout_ms, flow_id, limit)
                .await?;
            if !claimed.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(claimed);
            }
            tokio::select! {
                changed = work.changed() => {
                    if changed.is_err() {
                        return Ok(claimed);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return Ok(claimed),
            }
        }
    }

    /// `claimNextExecutions`: claims up to `limit` claimable CREATED
    /// executions (of `flow_id` when given) that are due, in hand-out order:
    /// the highest priority first, then by due time, then by id. Concurrent callers
    /// never receive the same execution and, on PostgreSQL, never wait on
    /// each other (`FOR UPDATE SKIP LOCKED`). When the fresh queue has too
    /// little, lapsed leases go back into it and the pull takes from them
    /// (so no sweeper process is needed).
    ///
    /// Where the table has pulls after a queue head (PostgreSQL; see
    /// `db::heads`), a pull starts after the oldest execution the previous
    /// pull of its flow took, and reads from the start when it finds too
    /// little there.
    pub async fn claim_next_executions(
        &self,
        worker_id: &str,
        timeout_ms: i64,
        flow_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Execution>> {
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        validate::range("limit", limit, 1, limits::MAX_CLAIM_BATCH)?;
        if let Some(flow) = flow_id {
            validate::id("flowId", flow)?;
        }
        self.start_due_timer();
        let now = now();
        let sql = self.db.sql();
        let heads = sql.pull_after.is_some();
        let requeues = self.db.bus().requeues();
        let start = heads.then(|| self.db.heads().start_for(flow_id, requeues));
        let (after, found_at) = match start.flatten() {
            Some(HeadStart { key, found_at }) => (Some(key), Some(found_at)),
            None => (None, None),
        };
        let pull = Pull {
            sql,
            worker: worker_id.to_owned(),
            flow: flow_id.map(str::to_owned),
            now,
            expires: expiry(now, timeout_ms),
        };
        let (mut claimed, from_start) = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let mut claimed = pull.fresh(w, limit, after.as_ref()).await?;
                    let short = |claimed: &Vec<Execution>| (claimed.len() as i64) < limit;
                    let from_start = after.is_none() || short(&claimed);
                    if after.is_some() && short(&claimed) {
                        let more = limit - claimed.len() as i64;
                        claimed.extend(pull.fresh(w, more, None).await?);
                    }
                    let mut returned = 0;
                    if short(&claimed) {
                        returned = pull.return_lapsed(w).await?;
                        if returned > 0 {
                            let more = limit - claimed.len() as i64;
                            claimed.extend(pull.fresh(w, more, None).await?);
                        }
                    }
                    // Claimed rows are not news for waiting workers; lapsed
                    // leases put back are.
                    let effects = match claimed.is_empty() && returned == 0 {
                        true => Effects::none(),
                        false => Effects::logged(),
                    };
                    Ok(((claimed, from_start), effects.requeued_if(returned > 0)))
                })
            })
            .await?;
        claimed.sort_by_cached_key(queue_key);
        if let (true, Some(first)) = (heads, claimed.first()) {
            let from = if from_start { None } else { found_at };
            self.db
                .heads()
                .record(flow_id, requeues, from, queue_key(first));
        }
        crate::metrics::handed_out(claimed.len());
        Ok(claimed)
    }
}

impl Pull {
    /// Claims up to `limit` executions of the fresh queue (from after
    /// `after` when given).
    async fn fresh(
        &self,
        w: &Writer<'_>,
        limit: i64,
        after: Option<&QueueKey>,
    ) -> StoreResult<Vec<Execution>> {
        let of_flow = usize::from(self.flow.is_some());
        let steps = match (after, self.sql.pull_after) {
            (Some(_), Some(pull_after)) => pull_after[of_flow],
            _ => self.sql.pull[of_flow],
        };
        let (head_priority, head_at, head_id) = match after {
            Some((rank, at, id)) => (Some(-rank), Some(*at), Some(id.clone())),
            None => (None, None, None),
        };
        // Every claim statement takes these seven (see `claim`).
        let values: Vec<Value> = vec![
            self.worker.clone().into(),
            self.now.into(),
            self.expires.into(),
            self.flow.clone().into(),
            head_priority.into(),
            head_at.into(),
            head_id.into(),
        ];
        let texts = run::steps_with_limit(steps, limit);
        run::decode_all(&run::steps(w, &texts, values).await?)
    }

    /// Returns lapsed leases to the queue; how many came back.
    async fn return_lapsed(&self, w: &Writer<'_>) -> StoreResult<u64> {
        use sea_orm::ConnectionTrait;
        let statement = run::statement(
            w.get_database_backend(),
            self.sql.return_lapsed,
            [self.now.into()],
        );
        Ok(w.execute(statement).await?.rows_affected())
    }
}
