//! Claims: which worker runs an execution now. A claim, release, heartbeat
//! or finish is one statement on PostgreSQL and one write of a SQLite
//! commit group, so that concurrent workers never both win. A pull is one
//! statement too, plus — when the fresh queue runs short — one returning
//! lapsed leases and a second pull.
//!
//! The statements are whole, one per operation and backend. Status values
//! are written as literals: PostgreSQL uses a partial index (`WHERE status =
//! 'created'`) only for a statement that names the same literal, and a
//! test below checks every literal against the enums' spellings.
//!
//! Lock order on PostgreSQL: every path that touches both rows (claim, pull,
//! heartbeat, release, finish) locks the execution row before the claim row,
//! so two of them never wait on each other in opposite orders.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};

use super::group_commit::Writer;
use super::rows::returned;
use super::sql::{json_list, statement, PerKey, Sql};
use super::{
    limits, now, validate, Claim, ClaimStatus, Execution, ExecutionStatus, ExecutionStore, Scope,
    StoreError, StoreResult,
};

// ------------------------------------------------------------ claim by id

/// Claims execution $1 for worker $2 at $3 until $4, unless it is terminal
/// or another worker's live claim holds it (a claim row is taken over when
/// it is not active, has expired, or is the same worker's: a re-claim
/// extends it). The execution is processed by the worker since its claim
/// began. Returns the execution with the claim's columns.
const PG_CLAIM: &str = "\
WITH claimed AS (
    INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
    SELECT id, $2, $3, $4, $3, 'active' FROM executions
    WHERE id = $1 AND status NOT IN ('completed', 'failed', 'stopped')
    FOR UPDATE
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
    RETURNING *
), processing AS (
    UPDATE executions SET
        processing_worker_id = $2,
        processing_started_at = claimed.claimed_at,
        updated_at = $3,
        lease_expires_at = $4
    FROM claimed WHERE executions.id = claimed.execution_id
    RETURNING executions.*
)
SELECT p.*, c.worker_id AS claim_worker_id, c.claimed_at AS claim_claimed_at,
       c.expires_at AS claim_expires_at, c.heartbeat_at AS claim_heartbeat_at,
       c.status AS claim_status
FROM processing p JOIN claimed c ON c.execution_id = p.id";

/// SQLite (no data-modifying CTEs), step 1 of a claim or a pull: claims the
/// executions of the JSON array $1 for worker $2 at $3 until $4, on the
/// same terms as `PG_CLAIM`. Returns the claim rows taken.
const SQLITE_CLAIM: &str = "\
INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
SELECT id, $2, $3, $4, $3, 'active' FROM executions
WHERE id IN (SELECT value FROM json_each($1)) AND status NOT IN ('completed', 'failed', 'stopped')
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
RETURNING *";

/// SQLite, step 2: the executions of the JSON array $1 (those step 1
/// claimed) are processed by worker $2 since their claim began, updated at
/// $3, their lease until $4.
const SQLITE_PROCESSING: &str = "\
UPDATE executions SET
    processing_worker_id = $2,
    processing_started_at = (SELECT claimed_at FROM execution_claims c WHERE c.execution_id = executions.id),
    updated_at = $3,
    lease_expires_at = $4
WHERE id IN (SELECT value FROM json_each($1))
RETURNING *";

// ------------------------------------------------------------------ pull

/// Claims for worker $1 at $2 until $3 the `{limit}` oldest executions of
/// the fresh queue (CREATED, no lease), skipping rows another pull has
/// locked: concurrent pulls never wait on each other nor get the same
/// execution. Reads about `{limit}` entries of the queue's partial index,
/// however many executions are leased. (Written once: `PG_PULL_OF_FLOW`
/// adds the flow condition, which the queue's partial index by flow serves.)
///
/// The limit is written into the statement (`with_limit`), not bound: with a
/// bound limit PostgreSQL costs the prepared statement's generic plan for a
/// tenth of the queue, finds it dearer than a plan for the actual limit, and
/// plans again on every call — a fifth of its time in a profile of limit-1
/// pulls. Written in, the plan is kept; a connection prepares one statement
/// per limit its workers use.
///
/// For the same reason the flow and the head are compared with scalar
/// subqueries (`(SELECT $4)`): a plan made for the actual flow and head
/// estimates how much of the index lies past the head, PostgreSQL then
/// thought it cheaper than the kept plan by more than the cost of planning,
/// and planned every pull of a flow among others anew (every call of the
/// queue bench's batched round). Behind a subquery neither plan can see the
/// values, both cost the same, and the kept plan wins.
macro_rules! pg_pull {
    ($flow:literal) => {
        concat!("\
WITH candidates AS (
    SELECT id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NULL", $flow, "
    ORDER BY created_at, id
    LIMIT {limit}
    FOR UPDATE SKIP LOCKED
), claimed AS (
    INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
    SELECT id, $1, $2, $3, $2, 'active' FROM candidates
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
    RETURNING execution_id, claimed_at
)
UPDATE executions SET
    processing_worker_id = $1,
    processing_started_at = claimed.claimed_at,
    updated_at = $2,
    lease_expires_at = $3
FROM claimed WHERE executions.id = claimed.execution_id
RETURNING executions.*")
    };
}
const PG_PULL: &str = pg_pull!("");
/// `PG_PULL` within flow $4.
const PG_PULL_OF_FLOW: &str = pg_pull!(" AND flow_id = (SELECT $4)");
/// `PG_PULL` from after the execution created at $4 with id $5 (see
/// `QueueHeads`): the same range of the same index, entered further on.
const PG_PULL_AFTER: &str = pg_pull!(" AND (created_at, id) > ((SELECT $4), (SELECT $5))");
/// `PG_PULL_OF_FLOW` from after the execution created at $5 with id $6.
const PG_PULL_OF_FLOW_AFTER: &str =
    pg_pull!(" AND flow_id = (SELECT $4) AND (created_at, id) > ((SELECT $5), (SELECT $6))");

/// A pull statement with its limit (validated: 1 to `MAX_CLAIM_BATCH`)
/// written in.
fn with_limit(statement: &str, limit: i64) -> String {
    statement.replacen("{limit}", &limit.to_string(), 1)
}

/// SQLite: the $1 oldest executions of the fresh queue. The pull runs in
/// the commit group's write transaction, which holds SQLite's one write
/// lock, so nobody else picks the same rows before `SQLITE_CLAIM` takes them.
const SQLITE_PICK: &str = "\
SELECT id FROM executions
WHERE status = 'created' AND lease_expires_at IS NULL
ORDER BY created_at, id
LIMIT $1";

const SQLITE_PICK_OF_FLOW: &str = "\
SELECT id FROM executions
WHERE status = 'created' AND lease_expires_at IS NULL AND flow_id = $2
ORDER BY created_at, id
LIMIT $1";

/// Lapsed leases back into the queue: up to 1,000 CREATED executions whose
/// lease ran out before $1 lose it, read through the index of leased rows by
/// expiry (which reads only the lapsed ones).
const PG_RETURN_LAPSED: &str = "\
UPDATE executions SET lease_expires_at = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
    ORDER BY lease_expires_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
) AND lease_expires_at < $1";

const SQLITE_RETURN_LAPSED: &str = "\
UPDATE executions SET lease_expires_at = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
    ORDER BY lease_expires_at
    LIMIT 1000
) AND lease_expires_at < $1";

// --------------------------------------------------------------- release

/// Worker $2 gives up its active claim on execution $1 at $3: the claim is
/// released, the execution is no longer processed by it and leaves no
/// lease behind (it is claimable again at once). Nothing for anyone else.
const PG_RELEASE: &str = "\
WITH target AS (
    SELECT id FROM executions WHERE id = $1 FOR UPDATE
), held AS (
    UPDATE execution_claims SET status = 'released'
    FROM target
    WHERE execution_claims.execution_id = target.id
      AND execution_claims.worker_id = $2 AND execution_claims.status = 'active'
    RETURNING execution_claims.execution_id
)
UPDATE executions SET
    lease_expires_at = NULL,
    processing_started_at = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_started_at END,
    updated_at = CASE WHEN processing_worker_id = $2 THEN $3 ELSE updated_at END,
    processing_worker_id = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_worker_id END
FROM held WHERE executions.id = held.execution_id
RETURNING executions.*";

const SQLITE_RELEASE_CLAIM: &str = "\
UPDATE execution_claims SET status = 'released'
WHERE execution_id = $1 AND worker_id = $2 AND status = 'active'";

const SQLITE_RELEASE_EXECUTION: &str = "\
UPDATE executions SET
    lease_expires_at = NULL,
    processing_started_at = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_started_at END,
    updated_at = CASE WHEN processing_worker_id = $2 THEN $3 ELSE updated_at END,
    processing_worker_id = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_worker_id END
WHERE id = $1
RETURNING *";

// ---------------------------------------------------------------- expiry

/// Active claims past their expiry ($1) become expired (each logged by a
/// trigger, in this statement).
const EXPIRE_OLD: &str = "\
UPDATE execution_claims SET status = 'expired'
WHERE status = 'active' AND expires_at < $1
RETURNING execution_id";

/// Why a claim was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRejection {
    NotFound,
    Terminal,
    HeldByOther,
}

/// `finishExecution`'s input.
#[derive(Clone, Debug)]
pub struct Finish {
    pub execution_id: String,
    pub worker_id: String,
    /// COMPLETED, FAILED or STOPPED; CREATED puts it back in the queue.
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    /// Recorded as `lastFailureReason` (a retry without one records the
    /// error message).
    pub failure_reason: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ClaimOutcome {
    pub claim: Option<Claim>,
    pub rejection: Option<ClaimRejection>,
}

impl ClaimOutcome {
    pub fn acquired(&self) -> bool {
        self.claim.is_some()
    }
}

#[derive(FromQueryResult)]
struct ClaimColumns {
    claim_worker_id: String,
    claim_claimed_at: DateTime<Utc>,
    claim_expires_at: DateTime<Utc>,
    claim_heartbeat_at: DateTime<Utc>,
    claim_status: ClaimStatus,
}

#[derive(FromQueryResult)]
struct ClaimState {
    status: ExecutionStatus,
}

#[derive(FromQueryResult)]
struct Id {
    id: String,
}

fn expiry(now: DateTime<Utc>, timeout_ms: i64) -> DateTime<Utc> {
    now + Duration::milliseconds(timeout_ms)
}

/// `claim_execution`'s write: the claim and the execution it now holds.
async fn claim_one(
    w: &Writer<'_>,
    execution_id: String,
    worker_id: String,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<Option<(Claim, Execution)>> {
    let backend = w.get_database_backend();
    if backend == DbBackend::Postgres {
        let values = [
            execution_id.into(),
            worker_id.into(),
            now.into(),
            expires.into(),
        ];
        let Some(row) = w.query_one(statement(backend, PG_CLAIM, values)).await? else {
            return Ok(None);
        };
        let execution = Execution::from_query_result(&row, "")?;
        let claim = ClaimColumns::from_query_result(&row, "")?;
        return Ok(Some((
            Claim {
                execution_id: execution.id.clone(),
                worker_id: claim.claim_worker_id,
                claimed_at: claim.claim_claimed_at,
                expires_at: claim.claim_expires_at,
                heartbeat_at: claim.claim_heartbeat_at,
                status: claim.claim_status,
            },
            execution,
        )));
    }
    let (claims, executions) =
        claim_on_sqlite(w, vec![execution_id], worker_id, now, expires).await?;
    Ok(claims.into_iter().zip(executions).next())
}

/// SQLite's two steps of a claim (or a pull) of `ids`, in the writer's
/// savepoint: nothing is kept unless both are.
async fn claim_on_sqlite(
    w: &Writer<'_>,
    ids: Vec<String>,
    worker_id: String,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<(Vec<Claim>, Vec<Execution>)> {
    let backend = w.get_database_backend();
    let values = [
        json_list(&ids).into(),
        worker_id.clone().into(),
        now.into(),
        expires.into(),
    ];
    let claims = Claim::find_by_statement(statement(backend, SQLITE_CLAIM, values))
        .all(w)
        .await?;
    if claims.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let taken: Vec<String> = claims.iter().map(|c| c.execution_id.clone()).collect();
    let values = [
        json_list(&taken).into(),
        worker_id.into(),
        now.into(),
        expires.into(),
    ];
    let mut executions = returned(w, statement(backend, SQLITE_PROCESSING, values)).await?;
    let order: HashMap<&str, usize> = taken
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    executions.sort_by_key(|e| order.get(e.id.as_str()).copied());
    Ok((claims, executions))
}

/// Claims up to `limit` executions of the fresh queue for `worker_id`
/// (on PostgreSQL from after `after` when given).
async fn pull_fresh(
    w: &Writer<'_>,
    worker_id: &str,
    flow_id: Option<&str>,
    limit: i64,
    after: Option<&QueueKey>,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<Vec<Execution>> {
    let backend = w.get_database_backend();
    if backend == DbBackend::Postgres {
        let mut values: Vec<Value> = vec![worker_id.to_owned().into(), now.into(), expires.into()];
        if let Some(flow) = flow_id {
            values.push(flow.to_owned().into());
        }
        if let Some((created_at, id)) = after {
            values.push((*created_at).into());
            values.push(id.clone().into());
        }
        let text = match (flow_id, after) {
            (Some(_), None) => PG_PULL_OF_FLOW,
            (None, None) => PG_PULL,
            (Some(_), Some(_)) => PG_PULL_OF_FLOW_AFTER,
            (None, Some(_)) => PG_PULL_AFTER,
        };
        return returned(w, statement(backend, &with_limit(text, limit), values)).await;
    }
    let mut values: Vec<Value> = vec![limit.into()];
    let text = match flow_id {
        Some(flow) => {
            values.push(flow.to_owned().into());
            SQLITE_PICK_OF_FLOW
        }
        None => SQLITE_PICK,
    };
    let picked: Vec<String> = Id::find_by_statement(statement(backend, text, values))
        .all(w)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let (_, executions) = claim_on_sqlite(w, picked, worker_id.to_owned(), now, expires).await?;
    Ok(executions)
}

/// An execution's place in the queue: (created_at, id).
type QueueKey = (DateTime<Utc>, String);

/// How long a queue's head is trusted after the pull that found it from
/// the start of the queue.
const HEAD_TTL: std::time::Duration = std::time::Duration::from_millis(250);

/// Where each flow's queue was last seen to begin (PostgreSQL), so that a
/// pull need not walk what earlier pulls took.
///
/// A claim leaves its row's old entry in the queue's index until vacuum
/// removes it, and those entries pile up at the head of the queue, where
/// every pull starts: after 26,000 claims of one flow, a limit-1 pull read
/// 154 index pages to find its row, and 8 workers pulled a fifth slower
/// than on a fresh flow (2,391 against 2,946 pulls/s, wrk). So a pull
/// starts after the first execution the previous pull of that flow took:
/// what came before it was taken, or held by another transaction, when
/// that pull ran. That holds until something may have put an older
/// execution back in the queue, so a head is forgotten
/// - when executions are requeued, here or in another process (released,
///   retried, a lapsed lease put back, a status set back to CREATED: the
///   event bus's `requeues` counter moved since the head was found);
/// - when this process creates (or updates) a CREATED execution that sorts
///   before it (`created`);
/// - `HEAD_TTL` after a pull last looked from the start, which bounds how
///   long an execution can wait behind newer ones when it came back some
///   other way (held by a transaction that then left it claimable, such as
///   a pull that failed; created by another process with an older stamp).
///   One pull then looks from the start; pulls that arrive while it runs
///   keep the old head (eight workers all reading from the start at each
///   expiry made a limit-1 drain spend an eighth of its database time on
///   those reads), for another TTL at most if that pull fails;
/// - and a pull that finds fewer than it asked for after the head looks
///   from the start at once, so it never comes back empty-handed while
///   older work is there.
pub(crate) struct QueueHeads {
    ttl: std::time::Duration,
    heads: std::sync::Mutex<HashMap<Option<String>, Head>>,
}

impl Default for QueueHeads {
    fn default() -> Self {
        Self::with_ttl(HEAD_TTL)
    }
}

/// Where a pull starts: after `key`, of the head found at `found_at`.
struct HeadStart {
    key: QueueKey,
    found_at: std::time::Instant,
}

struct Head {
    /// The event bus's `requeues` counter when it was found.
    requeues: u64,
    /// When a pull last looked from the start of the queue.
    scanned_at: std::time::Instant,
    /// When a pull was sent to look from the start again (the TTL ran out).
    refreshing: Option<std::time::Instant>,
    key: QueueKey,
}

impl QueueHeads {
    pub(crate) fn with_ttl(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            heads: std::sync::Mutex::default(),
        }
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<Option<String>, Head>> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a pull of `flow` may start, when the head is still good at
    /// `requeues`: the key to start after, and when the head was found (for
    /// `record`). When the head's TTL ran out, the first caller gets `None`
    /// and is the one pull to look from the start; the callers that come
    /// while it runs keep the old head, unless it has been gone a whole TTL
    /// (as a pull that failed would be).
    fn start_for(&self, flow: Option<&str>, requeues: u64) -> Option<HeadStart> {
        let mut heads = self.heads();
        let head = heads.get_mut(&flow.map(str::to_owned))?;
        if head.requeues != requeues {
            return None;
        }
        let start = HeadStart {
            key: head.key.clone(),
            found_at: head.scanned_at,
        };
        if head.scanned_at.elapsed() < self.ttl {
            return Some(start);
        }
        match head.refreshing {
            Some(at) if at.elapsed() < self.ttl => Some(start),
            _ => {
                head.refreshing = Some(std::time::Instant::now());
                None
            }
        }
    }

    /// A pull that began at `requeues` took the execution at `key` as its
    /// oldest; `found_at` names the head it started after (`HeadStart`),
    /// `None` when it looked from the start.
    fn record(
        &self,
        flow: Option<&str>,
        requeues: u64,
        found_at: Option<std::time::Instant>,
        key: QueueKey,
    ) {
        let mut heads = self.heads();
        let flow = flow.map(str::to_owned);
        match found_at {
            None => {
                if heads.len() >= MAX_HEADS {
                    // Flows nobody pulled lately.
                    let ttl = self.ttl;
                    heads.retain(|_, head| head.scanned_at.elapsed() < ttl);
                }
                let scanned_at = std::time::Instant::now();
                heads.insert(
                    flow,
                    Head {
                        requeues,
                        scanned_at,
                        refreshing: None,
                        key,
                    },
                );
            }
            Some(found_at) => {
                // Only forward, only while nothing was requeued since, and
                // only from the head this pull started after: a pull that
                // started after an expired head must not move a fresh one
                // past work the fresh one's pull left behind.
                if let Some(head) = heads.get_mut(&flow) {
                    if head.requeues == requeues && head.scanned_at == found_at && head.key < key {
                        head.key = key;
                    }
                }
            }
        }
    }

    /// This process wrote CREATED executions, the oldest at `oldest`:
    /// heads past it are forgotten (an upsert keeps an old stamp; a create
    /// stamped before a newer one was pulled can commit after it).
    pub(crate) fn created(&self, oldest: &QueueKey) {
        self.heads().retain(|_, head| head.key < *oldest);
    }
}

/// Flows whose heads are kept before stale ones are dropped.
const MAX_HEADS: usize = 1024;

/// Returns lapsed leases to the queue; how many came back.
async fn return_lapsed(w: &Writer<'_>, now: DateTime<Utc>) -> StoreResult<u64> {
    let backend = w.get_database_backend();
    let text = match backend {
        DbBackend::Postgres => PG_RETURN_LAPSED,
        _ => SQLITE_RETURN_LAPSED,
    };
    Ok(w.execute(statement(backend, text, [now.into()]))
        .await?
        .rows_affected())
}

impl ExecutionStore {
    /// `claimExecution`: atomic; of any number of concurrent claimers exactly
    /// one acquires. Sets the execution's processing worker in the same
    /// write.
    pub async fn claim_execution(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
    ) -> StoreResult<ClaimOutcome> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        let now = now();
        let (id, worker, expires) = (
            execution_id.to_owned(),
            worker_id.to_owned(),
            expiry(now, timeout_ms),
        );
        let claimed = self
            .write(move |w| Box::pin(claim_one(w, id, worker, now, expires)))
            .await?;
        let Some((claim, execution)) = claimed else {
            let rejection = self.rejection(execution_id).await?;
            crate::metrics::claim(match rejection {
                ClaimRejection::NotFound => "not_found",
                ClaimRejection::Terminal => "terminal",
                ClaimRejection::HeldByOther => "held_by_other",
            });
            return Ok(ClaimOutcome {
                claim: None,
                rejection: Some(rejection),
            });
        };
        self.events.changed(&execution);
        crate::metrics::claim("acquired");
        Ok(ClaimOutcome {
            claim: Some(claim),
            rejection: None,
        })
    }

    async fn rejection(&self, execution_id: &str) -> StoreResult<ClaimRejection> {
        let state = ClaimState::find_by_statement(statement(
            self.backend(),
            "SELECT status FROM executions WHERE id = $1",
            [execution_id.to_owned().into()],
        ))
        .one(&self.db)
        .await?;
        Ok(match state {
            None => ClaimRejection::NotFound,
            Some(s) if s.status.is_terminal() => ClaimRejection::Terminal,
            Some(_) => ClaimRejection::HeldByOther,
        })
    }

    /// `claimNextExecutions(waitMs:)`: as `claim_next_executions`, but when
    /// nothing is claimable it waits up to `wait` for work to appear and
    /// returns as soon as it has some. Woken by writes of this process and,
    /// on PostgreSQL, by other processes' (through the event relay). The
    /// wait holds no database connection. No lost wake-up: the signal is
    /// marked seen *before* each attempt, so work created between an empty
    /// attempt and the wait wakes the waiter at once.
    pub async fn claim_next_executions_waiting(
        &self,
        worker_id: &str,
        timeout_ms: i64,
        flow_id: Option<&str>,
        limit: i64,
        wait: std::time::Duration,
    ) -> StoreResult<Vec<Execution>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut work = self.events.watch_work();
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
    /// executions (of `flow_id` when given), oldest first. Concurrent callers
    /// never receive the same execution and, on PostgreSQL, never wait on
    /// each other (`FOR UPDATE SKIP LOCKED`). When the fresh queue has too
    /// little, lapsed leases go back into it and the pull takes from them
    /// (so no sweeper process is needed).
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
        let now = now();
        let expires = expiry(now, timeout_ms);
        let postgres = self.backend() == DbBackend::Postgres;
        let requeues = self.events.requeues();
        let start = postgres.then(|| self.heads.start_for(flow_id, requeues));
        let (after, found_at) = match start.flatten() {
            Some(HeadStart { key, found_at }) => (Some(key), Some(found_at)),
            None => (None, None),
        };
        let (worker, flow) = (worker_id.to_owned(), flow_id.map(str::to_owned));
        let (mut claimed, returned, from_start) = self
            .write(move |w| {
                Box::pin(async move {
                    let flow = flow.as_deref();
                    let mut claimed =
                        pull_fresh(w, &worker, flow, limit, after.as_ref(), now, expires).await?;
                    let from_start = after.is_none() || (claimed.len() as i64) < limit;
                    if after.is_some() && (claimed.len() as i64) < limit {
                        let more = limit - claimed.len() as i64;
                        claimed
                            .extend(pull_fresh(w, &worker, flow, more, None, now, expires).await?);
                    }
                    let mut returned = 0;
                    if (claimed.len() as i64) < limit {
                        returned = return_lapsed(w, now).await?;
                        if returned > 0 {
                            let more = limit - claimed.len() as i64;
                            claimed.extend(
                                pull_fresh(w, &worker, flow, more, None, now, expires).await?,
                            );
                        }
                    }
                    Ok((claimed, returned, from_start))
                })
            })
            .await?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        if let (true, Some(first)) = (postgres, claimed.first()) {
            let from = if from_start { None } else { found_at };
            self.heads.record(
                flow_id,
                requeues,
                from,
                (first.created_at, first.id.clone()),
            );
        }
        crate::metrics::handed_out(claimed.len());
        if returned > 0 {
            self.events.requeued();
        }
        if !claimed.is_empty() || returned > 0 {
            self.events.committed();
        }
        Ok(claimed)
    }

    /// `extendClaim` (heartbeat): only the holder of a live claim. The
    /// execution's lease moves with the claim's expiry. One item of
    /// `extend_many`.
    pub async fn extend_claim(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        let extended = self
            .extend_many(worker_id, vec![execution_id.to_owned()], timeout_ms)
            .await?;
        Ok(extended.iter().any(|e| e.expires_at.is_some()))
    }

    /// `releaseExecution`: the holder marks its claim released and stops
    /// being the execution's processing worker; the execution is claimable
    /// again at once. Anyone else: false, no change.
    pub async fn release_execution(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        let values: [Value; 3] = [
            execution_id.to_owned().into(),
            worker_id.to_owned().into(),
            now().into(),
        ];
        let released = self
            .write(move |w| {
                Box::pin(async move {
                    let backend = w.get_database_backend();
                    if backend == DbBackend::Postgres {
                        return Ok(Execution::find_by_statement(statement(
                            backend, PG_RELEASE, values,
                        ))
                        .one(w)
                        .await?);
                    }
                    let held = w
                        .execute(statement(
                            backend,
                            SQLITE_RELEASE_CLAIM,
                            values[..2].to_vec(),
                        ))
                        .await?;
                    if held.rows_affected() == 0 {
                        return Ok(None);
                    }
                    Ok(Execution::find_by_statement(statement(
                        backend,
                        SQLITE_RELEASE_EXECUTION,
                        values,
                    ))
                    .one(w)
                    .await?)
                })
            })
            .await?;
        Ok(match released {
            Some(execution) => {
                self.events.requeued();
                self.events.changed(&execution);
                true
            }
            None => false,
        })
    }

    /// `finishExecution`: the end of a worker's round, in one atomic write by
    /// the holder of a live claim. Sets the final status (or CREATED, to be
    /// retried, counting the failure), stamps the time, and releases the
    /// claim. Refused (`Conflict`) for anyone else and once the lease lapsed.
    /// One item of `finish_many`.
    pub async fn finish_execution(&self, finish: Finish) -> StoreResult<Execution> {
        let id = finish.execution_id.clone();
        let worker = finish.worker_id.clone();
        let outcome = self.finish_many(vec![finish]).await?.pop();
        match outcome {
            Some(super::FinishOutcome {
                execution: Some(execution),
                ..
            }) => Ok(execution),
            Some(super::FinishOutcome {
                refusal: Some("NOT_FOUND"),
                ..
            }) => Err(StoreError::not_found("execution", id)),
            _ => Err(StoreError::Conflict(format!(
                "execution {id} has no live claim held by worker {worker}"
            ))),
        }
    }

    /// `expireOldClaims`: active claims past their expiry become `expired`.
    pub async fn expire_old_claims(&self) -> StoreResult<u64> {
        let at = now();
        let expired = self
            .write(move |w| {
                Box::pin(async move {
                    let backend = w.get_database_backend();
                    Ok(w.query_all(statement(backend, EXPIRE_OLD, [at.into()]))
                        .await?
                        .len() as u64)
                })
            })
            .await?;
        if expired > 0 {
            self.events.committed();
        }
        Ok(expired)
    }

    /// `getActiveClaims`: live claims (active and not past expiry).
    pub async fn get_active_claims(&self, scope: &Scope) -> StoreResult<Vec<Claim>> {
        let mut sql = Sql::new("SELECT c.* FROM execution_claims c JOIN executions e ON e.id = c.execution_id WHERE c.status = 'active' AND c.expires_at >= ");
        let at = sql.bind(now());
        sql.push(&at)
            .scope("e.owner_id", scope)
            .push(" ORDER BY c.claimed_at, c.execution_id");
        Ok(Claim::find_by_statement(sql.build(self.backend()))
            .all(&self.reads)
            .await?)
    }

    /// `getClaimForExecution`: the claim row in whatever status.
    pub async fn get_claim_for_execution(
        &self,
        execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<Option<Claim>> {
        validate::id("executionId", execution_id)?;
        Ok(self
            .claims_for(&[execution_id.to_owned()], scope)
            .await?
            .remove(execution_id))
    }

    /// Claim rows of many executions in one statement (the claim DataLoader).
    pub async fn claims_for(
        &self,
        execution_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Claim>> {
        if execution_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut sql = Sql::new("SELECT r.*");
        let filter = sql.owner_of_execution("x.execution_id", scope);
        sql.per_key(
            self.backend(),
            execution_ids,
            PerKey {
                table: "execution_claims",
                column: "execution_id",
                filter,
                order: "x.execution_id",
                limit: None,
            },
        );
        Ok(Claim::find_by_statement(sql.build(self.backend()))
            .all(&self.reads)
            .await?
            .into_iter()
            .map(|c| (c.execution_id.clone(), c))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ActiveEnum;

    /// When a head's TTL runs out, one pull looks from the start; the pulls
    /// that come while it runs keep the old head, a requeue still drops it
    /// for everyone, a pull that started after the old head cannot move the
    /// fresh one, and a refresh that never answers is retried after another
    /// TTL.
    #[test]
    fn one_pull_refreshes_an_expired_head() {
        let ttl = std::time::Duration::from_secs(3600);
        let heads = QueueHeads::with_ttl(ttl);
        let key = |id: &str| (DateTime::<Utc>::UNIX_EPOCH, id.to_owned());
        let flow = Some("f");
        let start = |requeues| heads.start_for(flow, requeues).map(|s| (s.key, s.found_at));
        heads.record(flow, 7, None, key("a"));
        let (fresh, found_a) = start(7).expect("fresh");
        assert_eq!(fresh, key("a"));
        assert_eq!(start(8), None, "requeued since");
        heads.record(flow, 7, Some(found_a), key("c"));
        assert_eq!(
            start(7).unwrap().0,
            key("c"),
            "a pull from the head moves it forward"
        );
        let long_ago = std::time::Instant::now().checked_sub(2 * ttl).unwrap();
        heads
            .heads()
            .get_mut(&Some("f".to_owned()))
            .unwrap()
            .scanned_at = long_ago;
        assert_eq!(start(7), None, "expired: this pull looks from the start");
        let (stale, found_stale) = start(7).expect("meanwhile the others keep the head");
        assert_eq!(stale, key("c"));
        assert_eq!(start(8), None, "but not past a requeue");
        heads.record(flow, 7, None, key("b"));
        heads.record(flow, 7, Some(found_stale), key("z"));
        assert_eq!(
            start(7).unwrap().0,
            key("b"),
            "a pull that started after the old head leaves the fresh one alone"
        );
        let mut all = heads.heads();
        let head = all.get_mut(&Some("f".to_owned())).unwrap();
        head.scanned_at = long_ago;
        head.refreshing = Some(long_ago);
        drop(all);
        assert_eq!(
            start(7),
            None,
            "a refresh that never answered is tried again"
        );
    }

    /// Every quoted literal in the claim statements is a status as the
    /// enums spell it, so renaming a status cannot leave a statement behind.
    #[test]
    fn statements_spell_statuses_as_the_enums_do() {
        let spellings: Vec<String> = ExecutionStatus::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .chain(
                [
                    ClaimStatus::Active,
                    ClaimStatus::Released,
                    ClaimStatus::Expired,
                ]
                .iter()
                .map(|s| s.to_value()),
            )
            .collect();
        let statements = [
            PG_CLAIM,
            SQLITE_CLAIM,
            SQLITE_PROCESSING,
            PG_PULL,
            PG_PULL_OF_FLOW,
            PG_PULL_AFTER,
            PG_PULL_OF_FLOW_AFTER,
            SQLITE_PICK,
            SQLITE_PICK_OF_FLOW,
            PG_RETURN_LAPSED,
            SQLITE_RETURN_LAPSED,
            PG_RELEASE,
            SQLITE_RELEASE_CLAIM,
            SQLITE_RELEASE_EXECUTION,
            EXPIRE_OLD,
        ];
        let mut checked = 0;
        for text in statements {
            for literal in text.split('\'').skip(1).step_by(2) {
                assert!(
                    spellings.iter().any(|s| s == literal),
                    "'{literal}' is not a status: {text}"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "only {checked} literals found");
    }
}
