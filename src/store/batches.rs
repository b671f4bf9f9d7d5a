//! Many executions in one request: a fan-out's children created in one
//! statement, a pulled batch finished in one, a worker's heartbeat for
//! everything it holds in one. Each statement is whole below, per backend;
//! the items travel as one JSON parameter.
//!
//! - `create_many` is all or nothing: one bad input refuses the whole
//!   request and writes nothing.
//! - `finish_many` and `extend_many` are all or nothing *per item*: an item
//!   whose worker does not hold a live claim changes nothing and is reported
//!   as such; the others go through.
//!
//! On SQLite each batch is one write of a commit group (`group_commit`):
//! its statements are kept together or not at all.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, RuntimeErr, SqlErr,
    Statement,
};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::Row;

use super::executions::default_times;
use super::rows::{decode_all, decode_error, returned};
use super::{
    now, validate, CreateExecution, Execution, ExecutionStatus, ExecutionStore, Finish, Scope,
    StoreError, StoreResult,
};

/// The most items one batch may hold.
pub const MAX_BATCH: usize = 10_000;

/// One item of `finish_many`.
#[derive(Clone, Debug)]
pub struct FinishOutcome {
    pub execution_id: String,
    /// `None` when it finished; else why not: NOT_FOUND, CONFLICT.
    pub refusal: Option<&'static str>,
    pub execution: Option<Execution>,
}

/// One item of `extend_many`.
#[derive(Clone, Debug)]
pub struct ClaimExtension {
    pub execution_id: String,
    /// The new expiry; `None` when this worker holds no live claim on it.
    pub expires_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- create

/// PostgreSQL's first try at a batch: every row new. The inputs travel as
/// one array per column ($1–$10, and the start and completion times the
/// status implies in $12 and $13; element i of each is input i) and are
/// inserted in input order at $11. A plain INSERT: an id that exists fails
/// the statement with a unique violation (nothing committed; the rows
/// inserted before the clash stay behind as dead rows until vacuum, none
/// when the first id exists, as in a retried batch), and the batch goes
/// through `PG_CREATE_MANY` instead. Against that upsert it skips the
/// conflict probe before each row, the parse of a JSON document of the
/// whole batch, and sending every column back: the caller knows each
/// column it wrote, except the JSON ones as PostgreSQL stores them
/// (`jsonb` orders keys), which come back with the id.
const PG_INSERT_NEW: &str = "\
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count)
SELECT x.id, x.flow_id, x.owner_id, x.root_execution_id, x.parent_execution_id, x.status,
       x.execution_depth, $11, $11, x.started_at, x.completed_at,
       x.options, x.integration, x.external_events, 0
FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]), CAST($4 AS text[]),
            CAST($5 AS text[]), CAST($6 AS text[]), CAST($7 AS int[]), CAST($8 AS jsonb[]),
            CAST($9 AS jsonb[]), CAST($10 AS jsonb[]), CAST($12 AS timestamptz[]),
            CAST($13 AS timestamptz[]))
     WITH ORDINALITY AS x(id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                          execution_depth, options, integration, external_events,
                          started_at, completed_at, ord)
ORDER BY x.ord
RETURNING id, options, integration, external_events";

/// Inserts the rows of $1 (a JSON array, in input order), or updates an
/// existing id of the same owner (as `createExecution` does); $2 is now.
/// A row that exists for another owner is not returned (the caller then
/// refuses the whole batch).
const PG_CREATE_MANY: &str = "\
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count)
SELECT x.id, x.flow_id, x.owner_id, x.root_execution_id, x.parent_execution_id, x.status,
       x.execution_depth, $2, $2,
       CASE WHEN x.status = 'running' THEN $2 END,
       CASE WHEN x.status IN ('completed', 'failed', 'stopped') THEN $2 END,
       x.options, x.integration, x.external_events, 0
FROM json_to_recordset(CAST($1 AS json)) AS x(
    ord INT, id TEXT, flow_id TEXT, owner_id TEXT, root_execution_id TEXT,
    parent_execution_id TEXT, status TEXT, execution_depth INT,
    options JSONB, integration JSONB, external_events JSONB)
ORDER BY x.ord
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, options = excluded.options,
    integration = excluded.integration, external_events = excluded.external_events,
    updated_at = excluded.updated_at,
    started_at = COALESCE(executions.started_at, excluded.started_at),
    completed_at = COALESCE(executions.completed_at, excluded.completed_at)
WHERE executions.owner_id = excluded.owner_id
RETURNING *";

const SQLITE_CREATE_MANY: &str = "\
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count)
SELECT json_extract(x.value, '$.id'), json_extract(x.value, '$.flow_id'),
       json_extract(x.value, '$.owner_id'), json_extract(x.value, '$.root_execution_id'),
       json_extract(x.value, '$.parent_execution_id'), json_extract(x.value, '$.status'),
       json_extract(x.value, '$.execution_depth'), $2, $2,
       CASE WHEN json_extract(x.value, '$.status') = 'running' THEN $2 END,
       CASE WHEN json_extract(x.value, '$.status') IN ('completed', 'failed', 'stopped') THEN $2 END,
       CASE WHEN json_type(x.value, '$.options') IN ('null') THEN NULL ELSE x.value -> '$.options' END,
       CASE WHEN json_type(x.value, '$.integration') IN ('null') THEN NULL ELSE x.value -> '$.integration' END,
       CASE WHEN json_type(x.value, '$.external_events') IN ('null') THEN NULL ELSE x.value -> '$.external_events' END,
       0
FROM json_each($1) AS x
WHERE true
ORDER BY x.key
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, options = excluded.options,
    integration = excluded.integration, external_events = excluded.external_events,
    updated_at = excluded.updated_at,
    started_at = COALESCE(executions.started_at, excluded.started_at),
    completed_at = COALESCE(executions.completed_at, excluded.completed_at)
WHERE executions.owner_id = excluded.owner_id
RETURNING *";

// ---------------------------------------------------------------- finish

/// Finishes each item of $1 whose worker holds a live claim (at $2): the
/// execution rows first, locked in id order (as every claim path locks the
/// execution before its claim), then the claims released, then the
/// executions written; an item without a live claim matches nothing.
///
/// The claims are found by primary key, one probe per item: the claim's
/// state is tested inside a CASE, which no index serves. (Written as plain
/// conditions, the planner read every live claim through the index of live
/// claims by expiry — and the entries that index still holds for claims
/// released since the last vacuum: 165,200 entries for a batch of 50 in a
/// profiled drain. The cost must follow the batch.)
///
/// `(SELECT count(*) FROM target) >= 0` is always true: it makes PostgreSQL
/// read `target` whole, taking every execution's lock, before it touches
/// the first claim (a one-time filter). Written as `execution_id IN (SELECT
/// id FROM target)` it compared each claim with every locked row: 499,500
/// comparisons and two thirds of the statement's time for 1,000 items.
const PG_FINISH_MANY: &str = "\
WITH input AS (
    SELECT * FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS x(
        execution_id TEXT, worker_id TEXT, status TEXT, error_message TEXT,
        error_node_id TEXT, failure_reason TEXT)
), target AS (
    SELECT e.id FROM executions e WHERE e.id IN (SELECT execution_id FROM input)
    ORDER BY e.id FOR UPDATE
), held AS (
    UPDATE execution_claims c SET status = 'released'
    FROM input i
    WHERE c.execution_id = i.execution_id AND c.worker_id = i.worker_id
      AND CASE WHEN c.status = 'active' THEN c.expires_at >= $2 ELSE false END
      AND (SELECT count(*) FROM target) >= 0
    RETURNING c.execution_id
)
UPDATE executions e SET
    status = i.status,
    updated_at = $2,
    lease_expires_at = NULL,
    error_message = COALESCE(i.error_message, e.error_message),
    error_node_id = COALESCE(i.error_node_id, e.error_node_id),
    completed_at = CASE WHEN i.status = 'created' THEN e.completed_at ELSE $2 END,
    failure_count = CASE WHEN i.status = 'created' THEN e.failure_count + 1 ELSE e.failure_count END,
    last_failure_reason = CASE
        WHEN i.status = 'created' THEN COALESCE(i.failure_reason, i.error_message, 'retry')
        ELSE COALESCE(i.failure_reason, e.last_failure_reason) END,
    last_failure_at = CASE
        WHEN i.status = 'created' OR i.failure_reason IS NOT NULL THEN $2
        ELSE e.last_failure_at END,
    processing_worker_id = CASE WHEN i.status = 'created' THEN NULL ELSE e.processing_worker_id END,
    processing_started_at = CASE WHEN i.status = 'created' THEN NULL ELSE e.processing_started_at END
FROM input i, held h
WHERE e.id = i.execution_id AND h.execution_id = e.id
RETURNING e.*";

/// SQLite, in one write transaction: the claims first (returning the
/// items that held one), then their executions.
/// (The `+` before status and expiry keeps SQLite from reading the claims
/// through the index of live claims, which would visit every one of them:
/// the items drive, one primary-key probe each.)
const SQLITE_RELEASE_HELD: &str = "\
UPDATE execution_claims SET status = 'released'
FROM (
    SELECT json_extract(x.value, '$.execution_id') AS execution_id,
           json_extract(x.value, '$.worker_id') AS worker_id
    FROM json_each($1) AS x
) AS i
WHERE execution_claims.execution_id = i.execution_id
  AND execution_claims.worker_id = i.worker_id
  AND +execution_claims.status = 'active' AND +execution_claims.expires_at >= $2
RETURNING execution_claims.execution_id";

const SQLITE_FINISH_HELD: &str = "\
UPDATE executions SET
    status = i.status,
    updated_at = $2,
    lease_expires_at = NULL,
    error_message = COALESCE(i.error_message, executions.error_message),
    error_node_id = COALESCE(i.error_node_id, executions.error_node_id),
    completed_at = CASE WHEN i.status = 'created' THEN executions.completed_at ELSE $2 END,
    failure_count = CASE WHEN i.status = 'created' THEN executions.failure_count + 1 ELSE executions.failure_count END,
    last_failure_reason = CASE
        WHEN i.status = 'created' THEN COALESCE(i.failure_reason, i.error_message, 'retry')
        ELSE COALESCE(i.failure_reason, executions.last_failure_reason) END,
    last_failure_at = CASE
        WHEN i.status = 'created' OR i.failure_reason IS NOT NULL THEN $2
        ELSE executions.last_failure_at END,
    processing_worker_id = CASE WHEN i.status = 'created' THEN NULL ELSE executions.processing_worker_id END,
    processing_started_at = CASE WHEN i.status = 'created' THEN NULL ELSE executions.processing_started_at END
FROM (
    SELECT json_extract(x.value, '$.execution_id') AS execution_id,
           json_extract(x.value, '$.status') AS status,
           json_extract(x.value, '$.error_message') AS error_message,
           json_extract(x.value, '$.error_node_id') AS error_node_id,
           json_extract(x.value, '$.failure_reason') AS failure_reason
    FROM json_each($1) AS x
    WHERE json_extract(x.value, '$.execution_id') IN (SELECT value FROM json_each($3))
) AS i
WHERE executions.id = i.execution_id
RETURNING *";

// ---------------------------------------------------------------- extend

/// Extends worker $2's live claims (at $3) on the executions of $1 to $4;
/// the executions locked first, in id order. The claims are probed by
/// primary key (the CASE keeps the planner off the index of live claims,
/// as in `PG_FINISH_MANY`).
const PG_EXTEND_MANY: &str = "\
WITH target AS (
    SELECT id FROM executions
    WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
    ORDER BY id FOR UPDATE
), held AS (
    UPDATE execution_claims SET expires_at = $4, heartbeat_at = $3
    WHERE execution_id IN (SELECT id FROM target)
      AND worker_id = $2 AND CASE WHEN status = 'active' THEN expires_at >= $3 ELSE false END
    RETURNING execution_id
)
UPDATE executions SET lease_expires_at = $4
FROM held WHERE executions.id = held.execution_id
RETURNING executions.id";

const SQLITE_EXTEND_CLAIMS: &str = "\
UPDATE execution_claims SET expires_at = $4, heartbeat_at = $3
WHERE execution_id IN (SELECT value FROM json_each($1))
  AND worker_id = $2 AND status = 'active' AND expires_at >= $3
RETURNING execution_id";

const SQLITE_EXTEND_LEASES: &str = "\
UPDATE executions SET lease_expires_at = $2
WHERE id IN (SELECT value FROM json_each($1))
RETURNING id";

/// Which of the ids of $1 exist.
const EXISTING: &str = "SELECT id FROM executions WHERE id IN (SELECT value FROM json_each($1))";
const PG_EXISTING: &str =
    "SELECT id FROM executions WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))";

/// One input of `create_many`, resolved: its id, root and depth known.
struct NewExecution {
    id: String,
    flow_id: String,
    owner_id: String,
    root_execution_id: String,
    parent_execution_id: Option<String>,
    status: ExecutionStatus,
    execution_depth: i32,
    options: Option<Value>,
    integration: Option<Value>,
    external_events: Option<Value>,
}

/// The batch as the JSON array the upsert statements read, in input order.
fn as_json(rows: &[NewExecution]) -> String {
    let items: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(ord, r)| {
            json!({
                "ord": ord,
                "id": r.id,
                "flow_id": r.flow_id,
                "owner_id": r.owner_id,
                "root_execution_id": r.root_execution_id,
                "parent_execution_id": r.parent_execution_id,
                "status": r.status.as_str(),
                "execution_depth": r.execution_depth,
                "options": r.options,
                "integration": r.integration,
                "external_events": r.external_events,
            })
        })
        .collect();
    Value::from(items).to_string()
}

fn parent_deleted() -> StoreError {
    StoreError::invalid(
        "parentExecutionId",
        "a parent was deleted while the batch was written",
    )
}

/// PostgreSQL: `rows` inserted as new executions at `at` (`PG_INSERT_NEW`),
/// answered in input order; `None` when one of the ids exists already
/// (nothing is written, and the caller runs the upsert).
async fn insert_new(
    db: &DatabaseConnection,
    rows: &[NewExecution],
    at: DateTime<Utc>,
) -> StoreResult<Option<Vec<Execution>>> {
    let text = |f: fn(&NewExecution) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let json = |f: fn(&NewExecution) -> &Option<Value>| {
        rows.iter()
            .map(|r| f(r).as_ref().map(Json))
            .collect::<Vec<_>>()
    };
    let parents: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.parent_execution_id.as_deref())
        .collect();
    // What the status implies, as `createExecution` stamps it.
    let times: Vec<_> = rows
        .iter()
        .map(|r| default_times(r.status, None, None, at))
        .collect();
    let inserted = sqlx::query(PG_INSERT_NEW)
        .bind(text(|r| &r.id))
        .bind(text(|r| &r.flow_id))
        .bind(text(|r| &r.owner_id))
        .bind(text(|r| &r.root_execution_id))
        .bind(parents)
        .bind(text(|r| r.status.as_str()))
        .bind(rows.iter().map(|r| r.execution_depth).collect::<Vec<i32>>())
        .bind(json(|r| &r.options))
        .bind(json(|r| &r.integration))
        .bind(json(|r| &r.external_events))
        .bind(at)
        .bind(times.iter().map(|t| t.0).collect::<Vec<_>>())
        .bind(times.iter().map(|t| t.1).collect::<Vec<_>>())
        .fetch_all(db.get_postgres_connection_pool())
        .await;
    let inserted = match inserted {
        Ok(inserted) => inserted,
        Err(err) => {
            let err = DbErr::Query(RuntimeErr::SqlxError(err));
            return match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => Ok(None),
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => Err(parent_deleted()),
                _ => Err(err.into()),
            };
        }
    };
    let mut stored: HashMap<String, [Option<Value>; 3]> = HashMap::with_capacity(rows.len());
    for row in &inserted {
        let get = |i: usize| row.try_get::<Option<Value>, _>(i).map_err(decode_error);
        let id: String = row.try_get(0).map_err(decode_error)?;
        stored.insert(id, [get(1)?, get(2)?, get(3)?]);
    }
    let mut created = Vec::with_capacity(rows.len());
    for (r, (started_at, completed_at)) in rows.iter().zip(times) {
        let Some([options, integration, external_events]) = stored.remove(&r.id) else {
            return Err(StoreError::Database(DbErr::Type(format!(
                "execution {} was not returned by its insert",
                r.id
            ))));
        };
        created.push(Execution {
            id: r.id.clone(),
            flow_id: r.flow_id.clone(),
            owner_id: r.owner_id.clone(),
            root_execution_id: r.root_execution_id.clone(),
            parent_execution_id: r.parent_execution_id.clone(),
            status: r.status,
            execution_depth: r.execution_depth,
            created_at: at,
            updated_at: at,
            started_at,
            completed_at,
            error_message: None,
            error_node_id: None,
            options,
            integration,
            external_events,
            failure_count: 0,
            last_failure_reason: None,
            last_failure_at: None,
            processing_started_at: None,
            processing_worker_id: None,
            lease_expires_at: None,
        });
    }
    Ok(Some(created))
}

fn size(field: &'static str, n: usize) -> StoreResult<()> {
    if n > MAX_BATCH {
        return Err(StoreError::invalid(
            field,
            format!("at most {MAX_BATCH} items per request, this one has {n}"),
        ));
    }
    Ok(())
}

#[derive(FromQueryResult)]
struct Id {
    id: String,
}

struct ParentRow {
    id: String,
    root_execution_id: String,
    execution_depth: i32,
}

impl ExecutionStore {
    /// `createExecutions`: every input created (or, for an existing id of
    /// the same owner, updated), in input order, in one statement; or
    /// nothing at all and the first reason. A parent may be an existing
    /// execution or an earlier input of the same batch.
    pub async fn create_many(
        &self,
        inputs: Vec<CreateExecution>,
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        size("inputs", inputs.len())?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        // Ids first (generated where absent), so parents can name them.
        let mut ids = Vec::with_capacity(inputs.len());
        let mut seen = HashSet::new();
        for input in &inputs {
            let id = match &input.id {
                Some(id) => {
                    validate::id("id", id)?;
                    id.clone()
                }
                None => uuid::Uuid::now_v7().to_string(),
            };
            validate::id("flowId", &input.flow_id)?;
            validate::id("ownerId", &input.owner_id)?;
            if let Some(owner) = scope.owner() {
                if owner != input.owner_id {
                    return Err(StoreError::Forbidden(
                        "a user may only create executions it owns".into(),
                    ));
                }
            }
            if !seen.insert(id.clone()) {
                return Err(StoreError::invalid(
                    "id",
                    format!("{id} appears twice in one batch"),
                ));
            }
            ids.push(id);
        }
        // Every parent named, in one read: those outside the batch, and
        // those in it that exist already (an upsert keeps their stored root
        // and depth, so their children must inherit those).
        let outside: Vec<String> = inputs
            .iter()
            .filter_map(|i| i.parent_execution_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for parent in &outside {
            validate::id("parentExecutionId", parent)?;
        }
        let mut known: HashMap<String, (String, i32)> = self
            .parents(&outside, scope)
            .await?
            .into_iter()
            .map(|p| (p.id, (p.root_execution_id, p.execution_depth)))
            .collect();
        let mut rows = Vec::with_capacity(inputs.len());
        for (input, id) in inputs.into_iter().zip(&ids) {
            let (root, depth) = match &input.parent_execution_id {
                None => (id.clone(), 0),
                Some(parent) if parent == id => {
                    return Err(StoreError::invalid(
                        "parentExecutionId",
                        "an execution cannot be its own parent",
                    ))
                }
                Some(parent) => {
                    let (root, depth) = known.get(parent).cloned().ok_or_else(|| {
                        StoreError::invalid(
                            "parentExecutionId",
                            format!(
                                "no execution with id {parent} (a parent in the same batch must come before its children)"
                            ),
                        )
                    })?;
                    (root, depth + 1)
                }
            };
            known.entry(id.clone()).or_insert((root.clone(), depth));
            // A JSON null is stored as no value (SQL NULL), as the JSON input
            // of the upsert below has always stored it.
            let json = |value: Option<Value>| value.filter(|v| !v.is_null());
            rows.push(NewExecution {
                id: id.clone(),
                flow_id: input.flow_id,
                owner_id: input.owner_id,
                root_execution_id: root,
                parent_execution_id: input.parent_execution_id,
                status: input.status.unwrap_or(ExecutionStatus::Created),
                execution_depth: depth,
                options: json(input.options),
                integration: json(input.integration),
                external_events: json(input.external_events),
            });
        }
        let at = now();
        let backend = self.backend();
        if backend == DbBackend::Postgres {
            if let Some(created) = insert_new(&self.db, &rows, at).await? {
                self.created(&created, at);
                return Ok(created);
            }
        }
        let text = match backend {
            DbBackend::Postgres => PG_CREATE_MANY,
            _ => SQLITE_CREATE_MANY,
        };
        let statement =
            Statement::from_sql_and_values(backend, text, [as_json(&rows).into(), at.into()]);
        let expected = ids.clone();
        let written = self
            .write(move |w| {
                Box::pin(async move {
                    w.transaction(|txn| {
                        Box::pin(async move {
                            let written = match txn.query_all(statement).await {
                                Ok(rows) => decode_all(&rows)?,
                                Err(err) if super::error::is_foreign_key_violation(&err) => {
                                    return Err(parent_deleted());
                                }
                                Err(err) => return Err(err.into()),
                            };
                            if written.len() != expected.len() {
                                // Refused, so rolled back: nothing is written.
                                let mine: HashSet<&str> =
                                    written.iter().map(|e| e.id.as_str()).collect();
                                let theirs = expected.iter().find(|id| !mine.contains(id.as_str()));
                                return Err(StoreError::Conflict(format!(
                                    "execution {} exists and belongs to another owner: nothing was written",
                                    theirs.map(String::as_str).unwrap_or("?")
                                )));
                            }
                            Ok(written)
                        })
                    })
                    .await
                })
            })
            .await?;
        let mut by_id: HashMap<String, Execution> =
            written.into_iter().map(|e| (e.id.clone(), e)).collect();
        let answers: Vec<Execution> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
        self.created(&answers, at);
        Ok(answers)
    }

    async fn parents(&self, ids: &[String], scope: &Scope) -> StoreResult<Vec<ParentRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.get_many_on(&self.db, ids, scope).await?;
        Ok(found
            .into_iter()
            .map(|e| ParentRow {
                id: e.id,
                root_execution_id: e.root_execution_id,
                execution_depth: e.execution_depth,
            })
            .collect())
    }

    /// `finishExecutions`: each item as `finishExecution` would, in one
    /// statement (PostgreSQL) or one write transaction (SQLite); an item
    /// whose worker holds no live claim changes nothing and says why.
    pub async fn finish_many(&self, items: Vec<Finish>) -> StoreResult<Vec<FinishOutcome>> {
        size("inputs", items.len())?;
        let mut seen = HashSet::new();
        for item in &items {
            validate::id("executionId", &item.execution_id)?;
            validate::id("workerId", &item.worker_id)?;
            if let Some(node) = &item.error_node_id {
                validate::id("errorNodeId", node)?;
            }
            if !(item.status == ExecutionStatus::Created || item.status.is_terminal()) {
                return Err(StoreError::invalid(
                    "status",
                    "must be COMPLETED, FAILED, STOPPED, or CREATED (to retry)",
                ));
            }
            if !seen.insert(item.execution_id.clone()) {
                return Err(StoreError::invalid(
                    "executionId",
                    format!("{} appears twice in one batch", item.execution_id),
                ));
            }
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let input: Vec<Value> = items
            .iter()
            .map(|i| {
                json!({
                    "execution_id": i.execution_id,
                    "worker_id": i.worker_id,
                    "status": i.status.as_str(),
                    "error_message": i.error_message,
                    "error_node_id": i.error_node_id,
                    "failure_reason": i.failure_reason,
                })
            })
            .collect();
        let input = Value::from(input).to_string();
        let at = now();
        let backend = self.backend();
        let finished: Vec<Execution> = self
            .write(move |w| {
                Box::pin(async move {
                    if backend == DbBackend::Postgres {
                        return returned(
                            w,
                            Statement::from_sql_and_values(
                                backend,
                                PG_FINISH_MANY,
                                [input.into(), at.into()],
                            ),
                        )
                        .await;
                    }
                    let held: Vec<String> = w
                        .query_all(Statement::from_sql_and_values(
                            backend,
                            SQLITE_RELEASE_HELD,
                            [input.clone().into(), at.into()],
                        ))
                        .await?
                        .iter()
                        .map(|row| row.try_get::<String>("", "execution_id"))
                        .collect::<Result<_, _>>()?;
                    if held.is_empty() {
                        return Ok(Vec::new());
                    }
                    returned(
                        w,
                        Statement::from_sql_and_values(
                            backend,
                            SQLITE_FINISH_HELD,
                            [
                                input.into(),
                                at.into(),
                                Value::from(held).to_string().into(),
                            ],
                        ),
                    )
                    .await
                })
            })
            .await?;
        if !finished.is_empty() {
            if finished
                .iter()
                .any(|e| e.status == ExecutionStatus::Created)
            {
                // Retried: back in the queue.
                self.events.requeued();
            }
            self.events.committed();
        }
        let mut by_id: HashMap<String, Execution> =
            finished.into_iter().map(|e| (e.id.clone(), e)).collect();
        let missing: Vec<String> = items
            .iter()
            .filter(|i| !by_id.contains_key(&i.execution_id))
            .map(|i| i.execution_id.clone())
            .collect();
        let existing = self.existing(&missing).await?;
        Ok(items
            .into_iter()
            .map(|item| match by_id.remove(&item.execution_id) {
                Some(execution) => FinishOutcome {
                    execution_id: item.execution_id,
                    refusal: None,
                    execution: Some(execution),
                },
                None => FinishOutcome {
                    refusal: Some(if existing.contains(&item.execution_id) {
                        "CONFLICT"
                    } else {
                        "NOT_FOUND"
                    }),
                    execution_id: item.execution_id,
                    execution: None,
                },
            })
            .collect())
    }

    /// `extendClaims`: one heartbeat for everything `worker_id` holds among
    /// `execution_ids`; the others are reported, unchanged.
    pub async fn extend_many(
        &self,
        worker_id: &str,
        execution_ids: Vec<String>,
        timeout_ms: i64,
    ) -> StoreResult<Vec<ClaimExtension>> {
        size("executionIds", execution_ids.len())?;
        validate::id("workerId", worker_id)?;
        validate::timeout_ms("timeoutMs", timeout_ms)?;
        for id in &execution_ids {
            validate::id("executionIds", id)?;
        }
        if execution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let expires = at + Duration::milliseconds(timeout_ms);
        let list = Value::from(execution_ids.clone()).to_string();
        let backend = self.backend();
        let worker = worker_id.to_owned();
        let extended: HashSet<String> = self
            .write(move |w| {
                Box::pin(async move {
                    if backend == DbBackend::Postgres {
                        return Ok(Id::find_by_statement(Statement::from_sql_and_values(
                            backend,
                            PG_EXTEND_MANY,
                            [list.into(), worker.into(), at.into(), expires.into()],
                        ))
                        .all(w)
                        .await?
                        .into_iter()
                        .map(|r| r.id)
                        .collect());
                    }
                    let held: Vec<String> = w
                        .query_all(Statement::from_sql_and_values(
                            backend,
                            SQLITE_EXTEND_CLAIMS,
                            [list.into(), worker.into(), at.into(), expires.into()],
                        ))
                        .await?
                        .iter()
                        .map(|row| row.try_get::<String>("", "execution_id"))
                        .collect::<Result<_, _>>()?;
                    if held.is_empty() {
                        return Ok(HashSet::new());
                    }
                    Ok(Id::find_by_statement(Statement::from_sql_and_values(
                        backend,
                        SQLITE_EXTEND_LEASES,
                        [Value::from(held).to_string().into(), expires.into()],
                    ))
                    .all(w)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect())
                })
            })
            .await?;
        if !extended.is_empty() {
            self.events.committed();
        }
        Ok(execution_ids
            .into_iter()
            .map(|id| ClaimExtension {
                expires_at: extended.contains(&id).then_some(expires),
                execution_id: id,
            })
            .collect())
    }

    async fn existing(&self, ids: &[String]) -> StoreResult<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let backend = self.backend();
        let text = match backend {
            DbBackend::Postgres => PG_EXISTING,
            _ => EXISTING,
        };
        Ok(Id::find_by_statement(Statement::from_sql_and_values(
            backend,
            text,
            [Value::from(ids.to_vec()).to_string().into()],
        ))
        .all(&self.db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
    }
}
