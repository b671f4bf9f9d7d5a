//! PostgreSQL: pulls that arrive together share one statement.
//!
//! A pull (`claimNextExecutions`) that arrives while fewer than
//! `STATEMENTS_PER_FLOW` pull statements of its flow are running starts one
//! at once. One that arrives while they are all busy waits for the next
//! statement of its flow, which serves every pull then waiting: one pick of
//! the oldest claimable executions, as many as the pulls asked for together,
//! each pull given its own share (its "slots"), each claim written for its
//! own worker and timeout. Workers polling together then cost the database
//! one statement per round instead of one each — the batched fetch the
//! fastest job queues get their speed from — and a pull that comes alone
//! waits for nothing.
//!
//! Exactly-once is the statement's, as before: one statement picks distinct
//! rows (`FOR UPDATE SKIP LOCKED`), and concurrent statements skip each
//! other's. The statements run in spawned tasks, so a caller that goes away
//! (a dropped request) never strands the pulls waiting behind it.
//!
//! SQLite needs none of this: its writes already go through one writer that
//! commits them in groups (`group_commit`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use serde_json::json;
use tokio::sync::oneshot;

use super::claims::{expiry, return_lapsed};
use super::group_commit::Writer;
use super::rows::ExecutionDecoder;
use super::{now, Execution, ExecutionStore, StoreError, StoreResult};

/// Pull statements of one flow that may run at once: enough to keep the
/// database's cores busy while the next group gathers.
const STATEMENTS_PER_FLOW: usize = 2;

/// The most slots one statement serves; pulls beyond wait for the next.
const MAX_SLOTS: i64 = 1_000;

/// Claims for each slot of $1 (`[{slot, worker_id, expires_at}]`, slots
/// numbered from 1) one of the $3 oldest executions of the fresh queue
/// (CREATED, no lease) at $2, skipping rows another statement has locked.
/// The oldest execution goes to slot 1, the next to slot 2, and so on;
/// every returned row names its slot (`pull_slot`). Reads about $3 entries
/// of the queue's partial index, however many executions are leased.
/// (Written once: `PG_PULL_OF_FLOW` adds the flow condition, $4, which the
/// queue's partial index by flow serves.)
macro_rules! pg_pull {
    ($flow:literal) => {
        concat!("\
WITH slots AS (
    SELECT * FROM json_to_recordset(CAST($1 AS json))
        AS s(slot BIGINT, worker_id TEXT, expires_at TIMESTAMPTZ)
), candidates AS (
    SELECT id, created_at FROM executions
    WHERE status = 'created' AND lease_expires_at IS NULL", $flow, "
    ORDER BY created_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), assigned AS (
    SELECT c.id, s.slot, s.worker_id, s.expires_at
    FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS slot FROM candidates) c
    JOIN slots s ON s.slot = c.slot
), claimed AS (
    INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
    SELECT id, worker_id, $2, expires_at, $2, 'active' FROM assigned
    ON CONFLICT (execution_id) DO UPDATE SET
        worker_id = excluded.worker_id,
        claimed_at = CASE WHEN execution_claims.status = 'active'
                           AND execution_claims.worker_id = excluded.worker_id
                           AND execution_claims.expires_at >= excluded.claimed_at
                          THEN execution_claims.claimed_at ELSE excluded.claimed_at END,
        expires_at = excluded.expires_at,
        heartbeat_at = excluded.heartbeat_at,
        status = 'active'
    WHERE execution_claims.status <> 'active'
       OR execution_claims.expires_at < excluded.claimed_at
       OR execution_claims.worker_id = excluded.worker_id
    RETURNING execution_id, worker_id, claimed_at, expires_at
)
UPDATE executions SET
    processing_worker_id = claimed.worker_id,
    processing_started_at = claimed.claimed_at,
    updated_at = $2,
    lease_expires_at = claimed.expires_at
FROM claimed JOIN assigned ON assigned.id = claimed.execution_id
WHERE executions.id = claimed.execution_id
RETURNING executions.*, assigned.slot AS pull_slot")
    };
}
pub(super) const PG_PULL: &str = pg_pull!("");
/// `PG_PULL` within flow $4.
pub(super) const PG_PULL_OF_FLOW: &str = pg_pull!(" AND flow_id = $4");

/// One `claimNextExecutions` call waiting for its statement.
pub(crate) struct Pull {
    pub worker_id: String,
    pub timeout_ms: i64,
    pub limit: i64,
    answer: oneshot::Sender<StoreResult<Pulled>>,
}

/// What one pull got: its executions, and how many lapsed leases its
/// statement put back in the queue.
pub(crate) struct Pulled {
    pub executions: Vec<Execution>,
    pub returned: u64,
}

/// The pulls waiting, per flow (`None`: any flow).
#[derive(Default)]
pub(crate) struct PullQueues {
    flows: Mutex<HashMap<Option<String>, Waiting>>,
}

#[derive(Default)]
struct Waiting {
    running: usize,
    pulls: Vec<Pull>,
}

impl Waiting {
    /// The next group: waiting pulls in arrival order, up to `MAX_SLOTS`
    /// slots (at least one pull).
    fn take_group(&mut self) -> Vec<Pull> {
        let mut slots = 0;
        let n = self
            .pulls
            .iter()
            .take_while(|p| {
                slots += p.limit;
                slots <= MAX_SLOTS
            })
            .count()
            .max(1);
        self.pulls.drain(..n.min(self.pulls.len())).collect()
    }
}

impl PullQueues {
    /// The queues, whatever a panicking holder left (every change to them is
    /// a single push, drain or count, never half done).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<String>, Waiting>> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `pull`; returns the group to run now when a statement of
    /// its flow may start.
    fn join(&self, flow: &Option<String>, pull: Pull) -> Option<Vec<Pull>> {
        let mut flows = self.lock();
        let waiting = flows.entry(flow.clone()).or_default();
        waiting.pulls.push(pull);
        if waiting.running < STATEMENTS_PER_FLOW {
            waiting.running += 1;
            Some(waiting.take_group())
        } else {
            None
        }
    }

    /// After a statement: the next group of its flow, or `None` (and one
    /// statement fewer running) when nobody waits.
    fn next(&self, flow: &Option<String>) -> Option<Vec<Pull>> {
        let mut flows = self.lock();
        let waiting = flows.get_mut(flow)?;
        if !waiting.pulls.is_empty() {
            return Some(waiting.take_group());
        }
        waiting.running -= 1;
        if waiting.running == 0 {
            flows.remove(flow);
        }
        None
    }
}

/// One slot of a statement: which pull of the group it fills, for whom.
#[derive(Clone)]
struct Slot {
    pull: usize,
    worker_id: String,
    expires: DateTime<Utc>,
}

/// A copy of a statement's error for each pull of its group.
fn shared(err: &StoreError) -> StoreError {
    match err {
        StoreError::NotFound { what, id } => StoreError::NotFound {
            what,
            id: id.clone(),
        },
        StoreError::InvalidInput { field, message } => StoreError::invalid(field, message.clone()),
        StoreError::Forbidden(m) => StoreError::Forbidden(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::EventsExpired => StoreError::EventsExpired,
        StoreError::TooManyRows { limit } => StoreError::TooManyRows { limit: *limit },
        StoreError::Unavailable(e) => StoreError::Unavailable(DbErr::Custom(e.to_string())),
        StoreError::Database(e) => StoreError::Database(DbErr::Custom(e.to_string())),
    }
}

/// Claims one execution for each of `slots` (fewer when the queue has
/// fewer); each claimed execution with the index of its slot.
async fn pick(
    w: &Writer<'_>,
    flow: Option<&str>,
    slots: &[Slot],
    now: DateTime<Utc>,
) -> StoreResult<Vec<(usize, Execution)>> {
    let numbered: Vec<serde_json::Value> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({ "slot": i + 1, "worker_id": s.worker_id, "expires_at": s.expires.to_rfc3339() })
        })
        .collect();
    let mut values: Vec<Value> = vec![
        serde_json::Value::from(numbered).to_string().into(),
        now.into(),
        (slots.len() as i64).into(),
    ];
    let text = match flow {
        Some(flow) => {
            values.push(flow.to_owned().into());
            PG_PULL_OF_FLOW
        }
        None => PG_PULL,
    };
    let rows = w
        .query_all(Statement::from_sql_and_values(
            w.get_database_backend(),
            text,
            values,
        ))
        .await?;
    let mut decoder = ExecutionDecoder::default();
    rows.iter()
        .map(|row| {
            let slot: i64 = row.try_get("", "pull_slot")?;
            Ok((slot as usize - 1, decoder.decode(row)?))
        })
        .collect()
}

impl ExecutionStore {
    /// Pulls waiting for a statement of their flow (PostgreSQL; always 0
    /// on SQLite).
    pub fn pulls_waiting(&self) -> usize {
        let flows = self.pulls.lock();
        flows.values().map(|w| w.pulls.len()).sum()
    }

    /// `claimNextExecutions` on PostgreSQL: `pull` joins the next statement
    /// of its flow.
    pub(crate) async fn pull_together(
        &self,
        flow: Option<String>,
        worker_id: String,
        timeout_ms: i64,
        limit: i64,
    ) -> StoreResult<Pulled> {
        let (answer, answered) = oneshot::channel();
        let pull = Pull {
            worker_id,
            timeout_ms,
            limit,
            answer,
        };
        if let Some(group) = self.pulls.join(&flow, pull) {
            let store = self.clone();
            tokio::spawn(async move { store.run_pulls(flow, group).await });
        }
        answered.await.map_err(|_| {
            StoreError::Database(DbErr::Custom("the pull's statement was abandoned".into()))
        })?
    }

    /// Runs `group`, then every group of its flow that gathered meanwhile.
    async fn run_pulls(self, flow: Option<String>, mut group: Vec<Pull>) {
        loop {
            self.pull_group(flow.as_deref(), group).await;
            match self.pulls.next(&flow) {
                Some(next) => group = next,
                None => return,
            }
        }
    }

    /// One statement for `group` (two more when the fresh queue runs short:
    /// lapsed leases returned, and a second pick for the slots left), then
    /// each pull answered with its share.
    async fn pull_group(&self, flow: Option<&str>, group: Vec<Pull>) {
        let now = now();
        let slots: Vec<Slot> = group
            .iter()
            .enumerate()
            .flat_map(|(pull, p)| {
                let expires = expiry(now, p.timeout_ms);
                (0..p.limit).map(move |_| Slot {
                    pull,
                    worker_id: p.worker_id.clone(),
                    expires,
                })
            })
            .collect();
        let flow = flow.map(str::to_owned);
        let picked = self
            .write(move |w| {
                Box::pin(async move {
                    let flow = flow.as_deref();
                    let mut picked = pick(w, flow, &slots, now).await?;
                    let mut returned = 0;
                    if picked.len() < slots.len() {
                        returned = return_lapsed(w, now).await?;
                        if returned > 0 {
                            let filled: HashSet<usize> = picked.iter().map(|(s, _)| *s).collect();
                            let open: Vec<usize> =
                                (0..slots.len()).filter(|s| !filled.contains(s)).collect();
                            let rest: Vec<Slot> = open.iter().map(|&s| slots[s].clone()).collect();
                            for (s, execution) in pick(w, flow, &rest, now).await? {
                                picked.push((open[s], execution));
                            }
                        }
                    }
                    let by_pull = picked
                        .into_iter()
                        .map(|(s, execution)| (slots[s].pull, execution))
                        .collect::<Vec<_>>();
                    Ok((by_pull, returned))
                })
            })
            .await;
        match picked {
            Ok((by_pull, returned)) => {
                let mut shares: Vec<Vec<Execution>> = group.iter().map(|_| Vec::new()).collect();
                for (pull, execution) in by_pull {
                    shares[pull].push(execution);
                }
                for (pull, executions) in group.into_iter().zip(shares) {
                    let _ = pull.answer.send(Ok(Pulled {
                        executions,
                        returned,
                    }));
                }
            }
            Err(err) => {
                for pull in group {
                    let _ = pull.answer.send(Err(shared(&err)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(limit: i64) -> Pull {
        Pull {
            worker_id: "w".into(),
            timeout_ms: 1_000,
            limit,
            answer: oneshot::channel().0,
        }
    }

    /// Pulls start at once while fewer than `STATEMENTS_PER_FLOW` of their
    /// flow run; later ones wait and go together in the next group, which
    /// never holds more than `MAX_SLOTS` slots (but always one pull); the
    /// flow is forgotten when its last statement ends with nobody waiting.
    #[test]
    fn pulls_gather_while_statements_run() {
        let queues = PullQueues::default();
        let flow = Some("f".to_owned());
        for _ in 0..STATEMENTS_PER_FLOW {
            assert_eq!(queues.join(&flow, pull(1)).map(|g| g.len()), Some(1));
        }
        assert!(queues.join(&None, pull(1)).is_some(), "another flow runs");
        for limit in [600, 300, 200, 5] {
            assert!(queues.join(&flow, pull(limit)).is_none());
        }
        let group = queues.next(&flow).expect("the waiting pulls");
        assert_eq!(
            group.iter().map(|p| p.limit).collect::<Vec<_>>(),
            [600, 300]
        );
        let group = queues.next(&flow).expect("the rest");
        assert_eq!(group.iter().map(|p| p.limit).collect::<Vec<_>>(), [200, 5]);
        assert!(queues.next(&flow).is_none());
        assert!(queues.next(&flow).is_none());
        assert!(!queues.flows.lock().unwrap().contains_key(&flow));
        assert!(
            queues.join(&flow, pull(2_000)).is_some(),
            "one pull, however big"
        );
    }
}
