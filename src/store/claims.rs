//! Claims: which worker runs an execution now. Every operation is one
//! conditional statement, or a write transaction, so that concurrent workers
//! never both win.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, TransactionTrait};

use super::sql::{json_list, PerKey, Sql};
use super::{
    limits, now, validate, Claim, ClaimStatus, Execution, ExecutionStatus, ExecutionStore, Scope,
    StoreError, StoreResult,
};

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

/// The claim upsert's text and the placeholders later statements reuse.
struct ClaimParams {
    text: String,
    worker: String,
    at: String,
    exp: String,
}

#[derive(FromQueryResult)]
struct ClaimState {
    status: ExecutionStatus,
}

/// The upsert both claim paths share: a claim row is taken over when it is
/// not active, has expired, or is the same worker's (a re-claim extends it).
/// `excluded.claimed_at` is this call's "now".
const TAKE_OVER: &str = "ON CONFLICT (execution_id) DO UPDATE SET \
    worker_id = excluded.worker_id, \
    claimed_at = CASE WHEN execution_claims.status = 'active' \
        AND execution_claims.worker_id = excluded.worker_id \
        AND execution_claims.expires_at >= excluded.claimed_at \
        THEN execution_claims.claimed_at ELSE excluded.claimed_at END, \
    expires_at = excluded.expires_at, heartbeat_at = excluded.heartbeat_at, status = 'active' \
    WHERE execution_claims.status <> 'active' \
        OR execution_claims.expires_at < excluded.claimed_at \
        OR execution_claims.worker_id = excluded.worker_id";

fn expiry(now: DateTime<Utc>, timeout_ms: i64) -> DateTime<Utc> {
    now + Duration::milliseconds(timeout_ms)
}

impl ExecutionStore {
    /// `claimExecution`: atomic; of any number of concurrent claimers exactly
    /// one acquires. Sets the execution's processing worker in the same
    /// transaction.
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
        let claimed = match self.backend() {
            DbBackend::Postgres => {
                self.claim_in_one_statement(execution_id, worker_id, timeout_ms, now)
                    .await?
            }
            _ => {
                self.claim_in_transaction(execution_id, worker_id, timeout_ms, now)
                    .await?
            }
        };
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

    /// The claim upsert, selecting from the execution so that an absent or
    /// terminal execution inserts nothing. Returns the SQL and the
    /// placeholders of the worker id and of "now".
    ///
    /// On PostgreSQL the execution row is locked (`FOR UPDATE`) before the
    /// claim row is written. Every path that touches both (claim, pull,
    /// heartbeat, release, finish) takes the execution row first, so two of
    /// them never wait on each other in opposite orders (no deadlock).
    fn claim_upsert(
        sql: &mut Sql,
        backend: DbBackend,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
        now: DateTime<Utc>,
    ) -> ClaimParams {
        let worker = sql.bind(worker_id.to_owned());
        let at = sql.bind(now);
        let exp = sql.bind(expiry(now, timeout_ms));
        let id = sql.bind(execution_id.to_owned());
        let lock = if backend == DbBackend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let text = format!(
            "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
             SELECT id, {worker}, {at}, {exp}, {at}, 'active' FROM executions WHERE id = {id} \
             AND status NOT IN ('completed', 'failed', 'stopped'){lock} {TAKE_OVER} RETURNING *"
        );
        ClaimParams {
            text,
            worker,
            at,
            exp,
        }
    }

    /// The execution's side of a successful claim: who processes it, since
    /// when, and until when its lease runs (which takes it out of the queue).
    fn processing_update(worker: &str, at: &str, exp: &str) -> String {
        format!(
            "UPDATE executions SET processing_started_at = CASE WHEN processing_worker_id = {worker} \
             THEN COALESCE(processing_started_at, {at}) ELSE {at} END, \
             processing_worker_id = {worker}, updated_at = {at}, lease_expires_at = {exp}"
        )
    }

    /// PostgreSQL: claim and execution update in ONE statement (data-modifying
    /// CTEs), which is its own transaction: one round trip per claim.
    async fn claim_in_one_statement(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Claim, Execution)>> {
        let mut sql = Sql::new("WITH claimed AS (");
        let ClaimParams {
            text: upsert,
            worker,
            at,
            exp,
        } = Self::claim_upsert(
            &mut sql,
            DbBackend::Postgres,
            execution_id,
            worker_id,
            timeout_ms,
            now,
        );
        let update = Self::processing_update(&worker, &at, &exp);
        sql.push(&format!(
            "{upsert}), touched AS ({update} FROM claimed WHERE executions.id = claimed.execution_id \
             RETURNING executions.*) \
             SELECT t.*, c.worker_id AS claim_worker_id, c.claimed_at AS claim_claimed_at, \
             c.expires_at AS claim_expires_at, c.heartbeat_at AS claim_heartbeat_at, c.status AS claim_status \
             FROM touched t JOIN claimed c ON c.execution_id = t.id"
        ));
        let Some(row) = self.db.query_one(sql.build(self.backend())).await? else {
            return Ok(None);
        };
        let execution = Execution::from_query_result(&row, "")?;
        let claim = ClaimColumns::from_query_result(&row, "")?;
        Ok(Some((
            Claim {
                execution_id: execution.id.clone(),
                worker_id: claim.claim_worker_id,
                claimed_at: claim.claim_claimed_at,
                expires_at: claim.claim_expires_at,
                heartbeat_at: claim.claim_heartbeat_at,
                status: claim.claim_status,
            },
            execution,
        )))
    }

    /// SQLite (no data-modifying CTEs): the same two writes in one write
    /// transaction.
    async fn claim_in_transaction(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Claim, Execution)>> {
        let txn = self.begin_write().await?;
        let mut sql = Sql::new("");
        let upsert = Self::claim_upsert(
            &mut sql,
            DbBackend::Sqlite,
            execution_id,
            worker_id,
            timeout_ms,
            now,
        );
        sql.push(&upsert.text);
        let Some(claim) = Claim::find_by_statement(sql.build(self.backend()))
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(None);
        };
        let mut sql = Sql::new("");
        let worker = sql.bind(worker_id.to_owned());
        let at = sql.bind(now);
        let exp = sql.bind(claim.expires_at);
        let id = sql.bind(execution_id.to_owned());
        let update = Self::processing_update(&worker, &at, &exp);
        sql.push(&format!("{update} WHERE id = {id} RETURNING *"));
        let execution = Self::query_execution(&txn, sql).await?;
        txn.commit().await?;
        Ok(execution.map(|execution| (claim, execution)))
    }

    async fn rejection(&self, execution_id: &str) -> StoreResult<ClaimRejection> {
        let mut sql = Sql::new("SELECT status FROM executions WHERE id = ");
        let p = sql.bind(execution_id.to_owned());
        sql.push(&p);
        let state = ClaimState::find_by_statement(sql.build(self.backend()))
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
    /// each other (`FOR UPDATE SKIP LOCKED`). SQLite has one writer at a time,
    /// so there the whole pick-and-claim is one short write transaction.
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
        let mut claimed = self
            .claim_fresh(worker_id, timeout_ms, flow_id, limit, now)
            .await?;
        if (claimed.len() as i64) < limit && self.return_lapsed_leases(now).await? > 0 {
            let more = limit - claimed.len() as i64;
            claimed.extend(
                self.claim_fresh(worker_id, timeout_ms, flow_id, more, now)
                    .await?,
            );
        }
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        crate::metrics::handed_out(claimed.len());
        if !claimed.is_empty() {
            self.events.committed();
        }
        Ok(claimed)
    }

    /// Lapsed leases back into the queue: CREATED executions whose lease ran
    /// out lose it (at most 1,000 per call, through the index of leased rows
    /// by expiry, which reads only the lapsed ones). Run by a pull that finds
    /// too little fresh work, so no sweeper process is needed. Returns how
    /// many came back.
    pub async fn return_lapsed_leases(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut sql = Sql::new("UPDATE executions SET lease_expires_at = NULL WHERE id IN (SELECT id FROM executions WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at < ");
        let at = sql.bind(now);
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        sql.push(&format!(
            "{at} ORDER BY lease_expires_at LIMIT 1000{lock}) AND lease_expires_at < {at}"
        ));
        let returned = match self.backend() {
            DbBackend::Postgres => self.db.execute(sql.build(self.backend())).await?,
            _ => {
                let txn = self.begin_write().await?;
                let result = txn.execute(sql.build(self.backend())).await?;
                txn.commit().await?;
                result
            }
        }
        .rows_affected();
        if returned > 0 {
            self.events.signal_work();
            self.events.committed();
        }
        Ok(returned)
    }

    /// Claims up to `limit` executions of the fresh queue (CREATED, no
    /// lease), oldest first, reading about `limit` entries of its partial
    /// index however many executions are leased.
    async fn claim_fresh(
        &self,
        worker_id: &str,
        timeout_ms: i64,
        flow_id: Option<&str>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Execution>> {
        let mut sql = Sql::new("");
        let worker = sql.bind(worker_id.to_owned());
        let at = sql.bind(now);
        let exp = sql.bind(expiry(now, timeout_ms));
        let n = sql.bind(limit);
        let flow = match flow_id {
            Some(flow) => format!(" AND e.flow_id = {}", sql.bind(flow.to_owned())),
            None => String::new(),
        };
        let lock = match self.backend() {
            DbBackend::Postgres => " FOR UPDATE OF e SKIP LOCKED",
            _ => "",
        };
        let candidates = format!(
            "SELECT e.id FROM executions e WHERE e.status = 'created' AND e.lease_expires_at IS NULL{flow} \
             ORDER BY e.created_at, e.id LIMIT {n}{lock}"
        );
        let insert = "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)";
        let claimed = match self.backend() {
            DbBackend::Postgres => {
                sql.push(&format!(
                    "WITH candidates AS ({candidates}), \
                     claimed AS ({insert} SELECT id, {worker}, {at}, {exp}, {at}, 'active' FROM candidates \
                     {TAKE_OVER} RETURNING execution_id) \
                     UPDATE executions SET processing_worker_id = {worker}, processing_started_at = {at}, \
                     updated_at = {at}, lease_expires_at = {exp} \
                     FROM claimed WHERE executions.id = claimed.execution_id \
                     RETURNING executions.*"
                ));
                Self::query_executions(&self.db, sql).await?
            }
            _ => {
                // One writer at a time: the first statement writes, so SQLite
                // takes the write lock before it reads anything (waiting under
                // busy_timeout), and nobody else picks the same rows.
                let txn = self.db.begin().await?;
                sql.push(&format!(
                    "{insert} SELECT id, {worker}, {at}, {exp}, {at}, 'active' FROM ({candidates}) \
                     WHERE true {TAKE_OVER} RETURNING *"
                ));
                let claims = Claim::find_by_statement(sql.build(self.backend()))
                    .all(&txn)
                    .await?;
                if claims.is_empty() {
                    txn.rollback().await?;
                    return Ok(Vec::new());
                }
                let ids: Vec<String> = claims.into_iter().map(|c| c.execution_id).collect();
                let mut sql = Sql::new("UPDATE executions SET processing_worker_id = ");
                let worker = sql.bind(worker_id.to_owned());
                let at = sql.bind(now);
                let exp = sql.bind(expiry(now, timeout_ms));
                let list = sql.bind(json_list(&ids));
                sql.push(&format!(
                    "{worker}, processing_started_at = {at}, updated_at = {at}, lease_expires_at = {exp} \
                     WHERE id IN (SELECT value FROM json_each({list})) RETURNING *"
                ));
                let rows = Self::query_executions(&txn, sql).await?;
                txn.commit().await?;
                rows
            }
        };
        Ok(claimed)
    }

    /// `extendClaim` (heartbeat): only the holder of a live claim. The
    /// execution's lease moves with the claim's expiry.
    pub async fn extend_claim(
        &self,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        let now = now();
        let exp = expiry(now, timeout_ms);
        let extended = self
            .write_as_holder(
                execution_id,
                worker_id,
                |sql| {
                    let exp = sql.bind(exp);
                    let at = sql.bind(now);
                    (
                        format!("expires_at = {exp}, heartbeat_at = {at}"),
                        format!(" AND expires_at >= {at}"),
                    )
                },
                |sql| format!("lease_expires_at = {}", sql.bind(exp)),
            )
            .await?;
        Ok(self.published(extended))
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
        let now = now();
        let released = self
            .write_as_holder(
                execution_id,
                worker_id,
                |_| ("status = 'released'".to_owned(), String::new()),
                |sql| {
                    let worker = sql.bind(worker_id.to_owned());
                    let at = sql.bind(now);
                    let mine = format!("processing_worker_id = {worker}");
                    format!(
                        "lease_expires_at = NULL, \
                         processing_started_at = CASE WHEN {mine} THEN NULL ELSE processing_started_at END, \
                         updated_at = CASE WHEN {mine} THEN {at} ELSE updated_at END, \
                         processing_worker_id = CASE WHEN {mine} THEN NULL ELSE processing_worker_id END"
                    )
                },
            )
            .await?;
        Ok(self.published(released))
    }

    /// `finishExecution`: the end of a worker's round, in one atomic write by
    /// the holder of a live claim. Sets the final status (or CREATED, to be
    /// retried, counting the failure), stamps the time, and releases the
    /// claim. Refused (`Conflict`) for anyone else and once the lease lapsed.
    pub async fn finish_execution(&self, finish: Finish) -> StoreResult<Execution> {
        validate::id("executionId", &finish.execution_id)?;
        validate::id("workerId", &finish.worker_id)?;
        if let Some(node) = &finish.error_node_id {
            validate::id("errorNodeId", node)?;
        }
        let retry = match finish.status {
            ExecutionStatus::Created => true,
            s if s.is_terminal() => false,
            _ => {
                return Err(StoreError::invalid(
                    "status",
                    "must be COMPLETED, FAILED, STOPPED, or CREATED (to retry)",
                ))
            }
        };
        let now = now();
        let row = self
            .write_as_holder(
                &finish.execution_id,
                &finish.worker_id,
                |sql| {
                    let at = sql.bind(now);
                    (
                        "status = 'released'".to_owned(),
                        format!(" AND expires_at >= {at}"),
                    )
                },
                |sql| {
                    let status = sql.bind(finish.status.as_str());
                    let at = sql.bind(now);
                    let message = sql.bind(finish.error_message.clone());
                    let node = sql.bind(finish.error_node_id.clone());
                    let mut sets = format!(
                        "status = {status}, updated_at = {at}, lease_expires_at = NULL, \
                         error_message = COALESCE({message}, error_message), \
                         error_node_id = COALESCE({node}, error_node_id)"
                    );
                    if retry {
                        let reason = finish
                            .failure_reason
                            .clone()
                            .or_else(|| finish.error_message.clone())
                            .unwrap_or_else(|| "retry".to_owned());
                        let reason = sql.bind(reason);
                        sets.push_str(&format!(
                            ", failure_count = failure_count + 1, last_failure_reason = {reason}, \
                             last_failure_at = {at}, processing_worker_id = NULL, \
                             processing_started_at = NULL"
                        ));
                    } else {
                        sets.push_str(&format!(", completed_at = {at}"));
                        if let Some(reason) = &finish.failure_reason {
                            let reason = sql.bind(reason.clone());
                            sets.push_str(&format!(
                                ", last_failure_reason = {reason}, last_failure_at = {at}"
                            ));
                        }
                    }
                    sets
                },
            )
            .await?;
        match row {
            Some(execution) => {
                self.events.changed(&execution);
                Ok(execution)
            }
            None => match self.rejection(&finish.execution_id).await? {
                ClaimRejection::NotFound => {
                    Err(StoreError::not_found("execution", &finish.execution_id))
                }
                _ => Err(StoreError::Conflict(format!(
                    "execution {} has no live claim held by worker {}",
                    finish.execution_id, finish.worker_id
                ))),
            },
        }
    }

    /// Publishes the row a holder's write returned; true when there was one.
    fn published(&self, row: Option<Execution>) -> bool {
        match row {
            Some(execution) => {
                self.events.changed(&execution);
                true
            }
            None => false,
        }
    }

    /// A write by the holder of the execution's active claim: `claim` gives
    /// the claim row's SET list and extra conditions, `execution` the
    /// execution row's SET list. Both rows change, or neither (None).
    ///
    /// PostgreSQL: one statement. The execution row is locked first, as in
    /// every claim path, then the claim row, then the execution is updated.
    /// SQLite: the same writes in one write transaction.
    async fn write_as_holder(
        &self,
        execution_id: &str,
        worker_id: &str,
        claim: impl Fn(&mut Sql) -> (String, String),
        execution: impl Fn(&mut Sql) -> String,
    ) -> StoreResult<Option<Execution>> {
        let holder = |sql: &mut Sql, column: &str| {
            let id = sql.bind(execution_id.to_owned());
            let worker = sql.bind(worker_id.to_owned());
            format!("{column} = {id} AND worker_id = {worker} AND status = 'active'")
        };
        if self.backend() == DbBackend::Postgres {
            let mut sql = Sql::new("WITH target AS (SELECT id FROM executions WHERE id = ");
            let id = sql.bind(execution_id.to_owned());
            let (set, extra) = claim(&mut sql);
            let held = holder(&mut sql, "execution_id");
            let exec_set = execution(&mut sql);
            sql.push(&format!(
                "{id} FOR UPDATE), held AS (UPDATE execution_claims SET {set} FROM target \
                 WHERE {held}{extra} AND execution_claims.execution_id = target.id \
                 RETURNING execution_claims.execution_id) \
                 UPDATE executions SET {exec_set} FROM held WHERE executions.id = held.execution_id \
                 RETURNING executions.*"
            ));
            return Self::query_execution(&self.db, sql).await;
        }
        let txn = self.begin_write().await?;
        let mut sql = Sql::new("UPDATE execution_claims SET ");
        let (set, extra) = claim(&mut sql);
        let held = holder(&mut sql, "execution_id");
        sql.push(&format!("{set} WHERE {held}{extra}"));
        if txn
            .execute(sql.build(self.backend()))
            .await?
            .rows_affected()
            == 0
        {
            txn.rollback().await?;
            return Ok(None);
        }
        let mut sql = Sql::new("UPDATE executions SET ");
        let exec_set = execution(&mut sql);
        let id = sql.bind(execution_id.to_owned());
        sql.push(&format!("{exec_set} WHERE id = {id} RETURNING *"));
        let row = Self::query_execution(&txn, sql).await?;
        txn.commit().await?;
        Ok(row)
    }

    /// `expireOldClaims`: active claims past their expiry become `expired`.
    pub async fn expire_old_claims(&self) -> StoreResult<u64> {
        let mut sql = Sql::new("UPDATE execution_claims SET status = 'expired' WHERE status = 'active' AND expires_at < ");
        let at = sql.bind(now());
        sql.push(&at).push(" RETURNING execution_id");
        let rows = self.db.query_all(sql.build(self.backend())).await?;
        if !rows.is_empty() {
            // Each expiry was logged by a trigger, in this statement.
            self.events.committed();
        }
        Ok(rows.len() as u64)
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
