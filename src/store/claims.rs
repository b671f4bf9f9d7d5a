//! Claims: which worker runs an execution now. Every operation is one
//! conditional statement, or a write transaction, so that concurrent workers
//! never both win.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, TransactionTrait};

use super::events::{EventKind, ExecutionEvent};
use super::sql::{in_json_list, json_list, Sql};
use super::{
    limits, now, validate, Claim, ClaimStatus, Execution, ExecutionStatus, ExecutionStore, Scope,
    StoreResult,
};

/// Why a claim was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRejection {
    NotFound,
    Terminal,
    HeldByOther,
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

/// A claim that still counts: active and not past its expiry.
fn live_claim_exists(execution: &str, now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM execution_claims c WHERE c.execution_id = {execution} \
         AND c.status = 'active' AND c.expires_at >= {now})"
    )
}

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
            return Ok(ClaimOutcome {
                claim: None,
                rejection: Some(rejection),
            });
        };
        self.events
            .publish(ExecutionEvent::changed(EventKind::Updated, execution));
        Ok(ClaimOutcome {
            claim: Some(claim),
            rejection: None,
        })
    }

    /// The claim upsert, selecting from the execution so that an absent or
    /// terminal execution inserts nothing. Returns the SQL and the
    /// placeholders of the worker id and of "now".
    fn claim_upsert(
        sql: &mut Sql,
        execution_id: &str,
        worker_id: &str,
        timeout_ms: i64,
        now: DateTime<Utc>,
    ) -> (String, String, String) {
        let worker = sql.bind(worker_id.to_owned());
        let at = sql.bind(now);
        let exp = sql.bind(expiry(now, timeout_ms));
        let id = sql.bind(execution_id.to_owned());
        let text = format!(
            "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
             SELECT id, {worker}, {at}, {exp}, {at}, 'active' FROM executions WHERE id = {id} \
             AND status NOT IN ('completed', 'failed', 'stopped') {TAKE_OVER} RETURNING *"
        );
        (text, worker, at)
    }

    /// The execution's side of a successful claim: who processes it, since when.
    fn processing_update(worker: &str, at: &str) -> String {
        format!(
            "UPDATE executions SET processing_started_at = CASE WHEN processing_worker_id = {worker} \
             THEN COALESCE(processing_started_at, {at}) ELSE {at} END, \
             processing_worker_id = {worker}, updated_at = {at}"
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
        let (upsert, worker, at) =
            Self::claim_upsert(&mut sql, execution_id, worker_id, timeout_ms, now);
        let update = Self::processing_update(&worker, &at);
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
        let (upsert, _, _) = Self::claim_upsert(&mut sql, execution_id, worker_id, timeout_ms, now);
        sql.push(&upsert);
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
        let id = sql.bind(execution_id.to_owned());
        let update = Self::processing_update(&worker, &at);
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
        let mut sql = Sql::new("");
        let worker = sql.bind(worker_id.to_owned());
        let at = sql.bind(now);
        let exp = sql.bind(expiry(now, timeout_ms));
        let n = sql.bind(limit);
        let flow = match flow_id {
            Some(flow) => format!(" AND e.flow_id = {}", sql.bind(flow.to_owned())),
            None => String::new(),
        };
        let unclaimed = format!("NOT {}", live_claim_exists("e.id", &at));
        let insert = "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)";
        let mut claimed = match self.backend() {
            DbBackend::Postgres => {
                sql.push(&format!(
                    "WITH candidates AS (SELECT e.id FROM executions e \
                     WHERE e.status = 'created'{flow} AND {unclaimed} \
                     ORDER BY e.created_at, e.id LIMIT {n} FOR UPDATE OF e SKIP LOCKED), \
                     claimed AS ({insert} SELECT id, {worker}, {at}, {exp}, {at}, 'active' FROM candidates \
                     {TAKE_OVER} RETURNING execution_id) \
                     UPDATE executions SET processing_worker_id = {worker}, processing_started_at = {at}, \
                     updated_at = {at} FROM claimed WHERE executions.id = claimed.execution_id \
                     RETURNING executions.*"
                ));
                Self::query_executions(&self.db, sql).await?
            }
            _ => {
                let txn = self.db.begin().await?;
                sql.push(&format!(
                    "{insert} SELECT e.id, {worker}, {at}, {exp}, {at}, 'active' FROM executions e \
                     WHERE e.status = 'created'{flow} AND {unclaimed} \
                     ORDER BY e.created_at, e.id LIMIT {n} {TAKE_OVER} RETURNING *"
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
                let list = sql.bind(json_list(&ids));
                sql.push(&format!(
                    "{worker}, processing_started_at = {at}, updated_at = {at} WHERE {} RETURNING *",
                    in_json_list(DbBackend::Sqlite, "id", &list)
                ));
                let rows = Self::query_executions(&txn, sql).await?;
                txn.commit().await?;
                rows
            }
        };
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        for execution in &claimed {
            self.events.publish(ExecutionEvent::changed(
                EventKind::Updated,
                execution.clone(),
            ));
        }
        Ok(claimed)
    }

    /// `extendClaim` (heartbeat): only the holder of a live claim.
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
        let mut sql = Sql::new("UPDATE execution_claims SET expires_at = ");
        let exp = sql.bind(expiry(now, timeout_ms));
        let at = sql.bind(now);
        let id = sql.bind(execution_id.to_owned());
        let worker = sql.bind(worker_id.to_owned());
        sql.push(&format!(
            "{exp}, heartbeat_at = {at} WHERE execution_id = {id} AND worker_id = {worker} \
             AND status = 'active' AND expires_at >= {at}"
        ));
        let extended = self
            .db
            .execute(sql.build(self.backend()))
            .await?
            .rows_affected()
            > 0;
        if extended {
            self.publish_claim_change(&[execution_id.to_owned()]).await;
        }
        Ok(extended)
    }

    /// `releaseExecution`: the holder marks its claim released and stops
    /// being the execution's processing worker. Anyone else: false, no change.
    pub async fn release_execution(
        &self,
        execution_id: &str,
        worker_id: &str,
    ) -> StoreResult<bool> {
        validate::id("executionId", execution_id)?;
        validate::id("workerId", worker_id)?;
        let now = now();
        let txn = self.begin_write().await?;
        let mut sql =
            Sql::new("UPDATE execution_claims SET status = 'released' WHERE execution_id = ");
        let id = sql.bind(execution_id.to_owned());
        let worker = sql.bind(worker_id.to_owned());
        sql.push(&format!(
            "{id} AND worker_id = {worker} AND status = 'active'"
        ));
        if txn
            .execute(sql.build(self.backend()))
            .await?
            .rows_affected()
            == 0
        {
            txn.rollback().await?;
            return Ok(false);
        }
        let mut sql = Sql::new("UPDATE executions SET processing_worker_id = NULL, processing_started_at = NULL, updated_at = ");
        let at = sql.bind(now);
        let id = sql.bind(execution_id.to_owned());
        let worker = sql.bind(worker_id.to_owned());
        sql.push(&format!(
            "{at} WHERE id = {id} AND processing_worker_id = {worker} RETURNING *"
        ));
        let execution = Self::query_execution(&txn, sql).await?;
        txn.commit().await?;
        match execution {
            Some(execution) => self
                .events
                .publish(ExecutionEvent::changed(EventKind::Updated, execution)),
            None => self.publish_claim_change(&[execution_id.to_owned()]).await,
        }
        Ok(true)
    }

    /// `expireOldClaims`: active claims past their expiry become `expired`.
    pub async fn expire_old_claims(&self) -> StoreResult<u64> {
        let mut sql = Sql::new("UPDATE execution_claims SET status = 'expired' WHERE status = 'active' AND expires_at < ");
        let at = sql.bind(now());
        sql.push(&at).push(" RETURNING execution_id");
        let rows = self.db.query_all(sql.build(self.backend())).await?;
        let ids = rows
            .iter()
            .filter_map(|r| r.try_get::<String>("", "execution_id").ok())
            .collect::<Vec<_>>();
        self.publish_claim_change(&ids).await;
        Ok(rows.len() as u64)
    }

    /// A claim row changed without the execution row changing: subscribers
    /// still hear of it, as an update of the execution. Skipped (no query)
    /// when nobody listens.
    async fn publish_claim_change(&self, execution_ids: &[String]) {
        if execution_ids.is_empty() || !self.events.has_subscribers() {
            return;
        }
        match self.get_many(execution_ids, &Scope::All).await {
            Ok(executions) => {
                for execution in executions {
                    self.events
                        .publish(ExecutionEvent::changed(EventKind::Updated, execution));
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not load executions for claim events"),
        }
    }

    /// `getActiveClaims`: live claims (active and not past expiry).
    pub async fn get_active_claims(&self, scope: &Scope) -> StoreResult<Vec<Claim>> {
        let mut sql = Sql::new("SELECT c.* FROM execution_claims c JOIN executions e ON e.id = c.execution_id WHERE c.status = 'active' AND c.expires_at >= ");
        let at = sql.bind(now());
        sql.push(&at)
            .scope("e.owner_id", scope)
            .push(" ORDER BY c.claimed_at, c.execution_id");
        Ok(Claim::find_by_statement(sql.build(self.backend()))
            .all(&self.db)
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
        let mut sql = Sql::new(
            "SELECT c.* FROM execution_claims c JOIN executions e ON e.id = c.execution_id WHERE ",
        );
        let p = sql.bind(json_list(execution_ids));
        sql.push(&in_json_list(self.backend(), "c.execution_id", &p))
            .scope("e.owner_id", scope);
        Ok(Claim::find_by_statement(sql.build(self.backend()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.execution_id.clone(), c))
            .collect())
    }
}
