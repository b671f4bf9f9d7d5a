//! `createExecution(s)`: one create is a batch of one.
//!
//! All or nothing: one bad input refuses the whole request and writes
//! nothing. A parent may be an existing execution or an earlier input of the
//! same batch; parent, root and depth are derived, never taken from input.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, SqlErr};
use serde_json::{json, Value};

use super::timeouts::counted_from;
use super::{default_times, CreateExecution, Runs};
use crate::store::db::{
    after_all, check_options, is_foreign_key_violation, limits, now, run, time_text,
    truncate_micros, validate, ArrayColumn, Effects, RunControls, Scope, Slots, StoreError,
    StoreResult,
};
use entity::execution::{Model as Execution, WAITING_FOR_KEY, WAITING_FOR_RUN};
use entity::ExecutionStatus;

/// One input, resolved: its id, root and depth known, the times its status
/// stamps (`default_times`) decided.
struct NewExecution {
    id: String,
    flow_id: String,
    owner_id: String,
    root_execution_id: String,
    parent_execution_id: Option<String>,
    status: ExecutionStatus,
    execution_depth: i32,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    /// None: due at its creation.
    run_at: Option<DateTime<Utc>>,
    priority: i32,
    /// Under a paused execution (its parent is): created PAUSED.
    paused: bool,
    /// A root with `options.execution.flowTimeoutMs`: when the deadline
    /// timer looks at its run (its start, or creation, plus the timeout).
    deadline_at: Option<DateTime<Utc>>,
    concurrency_key: Option<String>,
    /// Its run's `maxConcurrency` (a root's own; a child's, its parent's).
    max_concurrency: Option<i32>,
    /// What it waits for before it may be handed out (`WAITING_FOR_RUN`,
    /// `WAITING_FOR_KEY`; 0: nothing): a queued child of a limited run
    /// waits for a slot of its run, one with a limited key for its key's.
    waiting: i32,
    /// Its run's `nodeTimeoutMs` (a root's own; a child's, its parent's).
    node_timeout_ms: Option<i64>,
    options: Option<Value>,
    integration: Option<Value>,
    external_events: Option<Value>,
}

impl Runs {
    /// `createExecution`: inserts, or — when the id exists with the same
    /// owner — updates status, options, integration and externalEvents (the
    /// seed's upsert). One item of `create_many`.
    pub async fn create(&self, input: CreateExecution, scope: &Scope) -> StoreResult<Execution> {
        let id = input.id.clone().unwrap_or_default();
        self.create_many(vec![input], scope)
            .await?
            .pop()
            .ok_or_else(|| StoreError::Conflict(format!("execution {id} was not written")))
    }

    /// `createExecutions`: every input created (or, for an existing id of
    /// the same owner, updated), in input order, in one statement; or
    /// nothing at all and the first reason.
    pub async fn create_many(
        &self,
        inputs: Vec<CreateExecution>,
        scope: &Scope,
    ) -> StoreResult<Vec<Execution>> {
        validate::batch("inputs", inputs.len())?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let rows = self.resolve(inputs, scope, at).await?;
        if let Some(created) = self.insert_new(&rows, at).await? {
            // Written outside `Db::write` (the driver binds the arrays).
            self.db.announce(Effects::created(&created, at));
            self.db.admit_after(Slots::of(&created)).await;
            return Ok(created);
        }
        let upsert = self.db.stmt(
            self.db.sql().upsert_many,
            [as_json(&rows).into(), at.into()],
        );
        let expected: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let written = self
            .db
            .write(move |w| {
                Box::pin(async move {
                    let written = w
                        .transaction(|txn| {
                            Box::pin(async move { upsert_in(txn, upsert, &expected).await })
                        })
                        .await?;
                    // Waiting ones ask for a slot; one an upsert finished
                    // frees its own.
                    let effects = Effects::created(&written, at).admitting(Slots::of(&written));
                    Ok((written, effects))
                })
            })
            .await?;
        Ok(written)
    }

    /// The inputs checked and resolved: ids (generated where absent), roots
    /// and depths (every parent named read in one statement: those outside
    /// the batch, and those in it that exist already, since an upsert keeps
    /// their stored root and depth and their children must inherit those).
    async fn resolve(
        &self,
        inputs: Vec<CreateExecution>,
        scope: &Scope,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<NewExecution>> {
        let batch = inputs.len() > 1;
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
            if let Some(priority) = input.priority {
                validate::range(
                    "priority",
                    i64::from(priority),
                    i64::from(limits::MIN_PRIORITY),
                    i64::from(limits::MAX_PRIORITY),
                )?;
            }
            check_options(input.options.as_ref())?;
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
        let named: Vec<String> = inputs
            .iter()
            .filter_map(|i| i.parent_execution_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for parent in &named {
            validate::id("parentExecutionId", parent)?;
        }
        let mut known: HashMap<String, Parent> = self
            .parents(&named, scope)
            .await?
            .into_iter()
            .map(|p| {
                let parent = Parent {
                    root: p.root_execution_id,
                    depth: p.execution_depth,
                    paused: p.paused,
                    max_concurrency: p.max_concurrency,
                    // A root keeps none of its own: its options say it.
                    node_timeout_ms: match p.parent_execution_id {
                        None => RunControls::of(p.options.as_ref())
                            .ok()
                            .and_then(|c| c.node_timeout_ms),
                        Some(_) => p.node_timeout_ms,
                    },
                };
                (p.id, parent)
            })
            .collect();
        let limited_keys = self.limited_keys(&inputs).await?;
        let mut rows = Vec::with_capacity(inputs.len());
        for (input, id) in inputs.into_iter().zip(ids) {
            let controls = RunControls::of(input.options.as_ref())?;
            let this = match &input.parent_execution_id {
                None => Parent {
                    root: id.clone(),
                    depth: 0,
                    paused: false,
                    max_concurrency: controls.max_concurrency.map(|n| n as i32),
                    node_timeout_ms: controls.node_timeout_ms,
                },
                Some(parent) if *parent == id => {
                    return Err(StoreError::invalid(
                        "parentExecutionId",
                        "an execution cannot be its own parent",
                    ))
                }
                Some(parent) => {
                    let parent = known.get(parent).cloned().ok_or_else(|| {
                        let hint = match batch {
                            true => " (a parent in the same batch must come before its children)",
                            false => "",
                        };
                        StoreError::invalid(
                            "parentExecutionId",
                            format!("no execution with id {parent}{hint}"),
                        )
                    })?;
                    Parent {
                        depth: parent.depth + 1,
                        ..parent
                    }
                }
            };
            known.entry(id.clone()).or_insert_with(|| this.clone());
            let Parent {
                root,
                depth,
                paused,
                max_concurrency,
                node_timeout_ms: run_node_timeout_ms,
            } = this;
            // The root, its run's coordinator, is not held under the cap.
            let node_timeout_ms = input.parent_execution_id.as_ref().and(run_node_timeout_ms);
            // Under a paused execution, what would be queued waits PAUSED.
            let status = match input.status.unwrap_or(ExecutionStatus::Created) {
                ExecutionStatus::Created if paused => ExecutionStatus::Paused,
                status => status,
            };
            let (started_at, completed_at) = default_times(status, None, None, at);
            let run_at = input.run_at.map(truncate_micros);
            let deadline_at = match input.parent_execution_id {
                Some(_) => None,
                None => controls.flow_timeout_ms.map(|ms| {
                    counted_from(started_at, at, run_at) + chrono::Duration::milliseconds(ms)
                }),
            };
            // A root is its run's coordinator: its run's limit is on the
            // executions below it (a root holding a slot while its children
            // wait for one would stall a run of maxConcurrency 1).
            let queued = matches!(status, ExecutionStatus::Created | ExecutionStatus::Paused);
            let key = input.concurrency_key;
            let waiting = match () {
                _ if !queued => 0,
                _ if max_concurrency.is_some() && input.parent_execution_id.is_some() => {
                    WAITING_FOR_RUN
                }
                _ if key.as_ref().is_some_and(|k| limited_keys.contains(k)) => WAITING_FOR_KEY,
                _ => 0,
            };
            // A JSON null is stored as no value (SQL NULL).
            let json = |value: Option<Value>| value.filter(|v| !v.is_null());
            rows.push(NewExecution {
                id,
                flow_id: input.flow_id,
                owner_id: input.owner_id,
                root_execution_id: root,
                parent_execution_id: input.parent_execution_id,
                status,
                execution_depth: depth,
                started_at,
                completed_at,
                run_at,
                priority: input.priority.unwrap_or(0),
                paused,
                deadline_at,
                concurrency_key: key,
                max_concurrency,
                waiting,
                node_timeout_ms,
                options: json(input.options),
                integration: json(input.integration),
                external_events: json(input.external_events),
            });
        }
        Ok(rows)
    }

    /// The concurrency keys of `inputs` that have a limit (read on the
    /// primary); none read when no input names a key.
    async fn limited_keys(&self, inputs: &[CreateExecution]) -> StoreResult<HashSet<String>> {
        let keys: Vec<String> = inputs
            .iter()
            .filter_map(|i| i.concurrency_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        for key in &keys {
            validate::id("concurrencyKey", key)?;
        }
        let limited = self
            .db
            .stmt(self.db.sql().limited_keys, [run::json_list(&keys).into()]);
        let rows: Vec<KeyRow> = run::models(self.db.primary(), limited).await?;
        Ok(rows.into_iter().map(|r| r.key).collect())
    }

    /// The parents named, read on the primary (of the scope's owner).
    async fn parents(&self, ids: &[String], scope: &Scope) -> StoreResult<Vec<Execution>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let parents = self.db.stmt(
            self.db.sql().executions_by_ids,
            [run::json_list(ids).into(), scope.param()],
        );
        run::executions(self.db.primary(), parents).await
    }

    /// Where the table has it (PostgreSQL): `rows` inserted as new
    /// executions at `at` (`insert_new.sql`), answered in input order;
    /// `None` when the backend has no such insert or one of the ids exists
    /// already (nothing is written, and the caller runs the upsert).
    async fn insert_new(
        &self,
        rows: &[NewExecution],
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Execution>>> {
        let Some(text) = self.db.sql().insert_new else {
            return Ok(None);
        };
        let text_of = |f: fn(&NewExecution) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let json_of = |f: fn(&NewExecution) -> &Option<Value>| {
            rows.iter()
                .map(|r| f(r).as_ref().map(sqlx::types::Json))
                .collect::<Vec<_>>()
        };
        let columns = vec![
            ArrayColumn::Text(text_of(|r| &r.id)),
            ArrayColumn::Text(text_of(|r| &r.flow_id)),
            ArrayColumn::Text(text_of(|r| &r.owner_id)),
            ArrayColumn::Text(text_of(|r| &r.root_execution_id)),
            ArrayColumn::NullableText(
                rows.iter()
                    .map(|r| r.parent_execution_id.as_deref())
                    .collect(),
            ),
            ArrayColumn::Text(text_of(|r| r.status.as_str())),
            ArrayColumn::Int(rows.iter().map(|r| r.execution_depth).collect()),
            ArrayColumn::Json(json_of(|r| &r.options)),
            ArrayColumn::Json(json_of(|r| &r.integration)),
            ArrayColumn::Json(json_of(|r| &r.external_events)),
            ArrayColumn::Time(at),
            ArrayColumn::NullableTimes(rows.iter().map(|r| r.started_at).collect()),
            ArrayColumn::NullableTimes(rows.iter().map(|r| r.completed_at).collect()),
            ArrayColumn::NullableTimes(rows.iter().map(|r| r.run_at).collect()),
            ArrayColumn::Int(rows.iter().map(|r| r.priority).collect()),
            ArrayColumn::Bool(rows.iter().map(|r| r.paused).collect()),
            ArrayColumn::NullableTimes(rows.iter().map(|r| r.deadline_at).collect()),
            ArrayColumn::NullableText(rows.iter().map(|r| r.concurrency_key.as_deref()).collect()),
            ArrayColumn::Int(
                rows.iter()
                    .map(|r| r.max_concurrency.unwrap_or(0))
                    .collect(),
            ),
            ArrayColumn::Int(rows.iter().map(|r| r.waiting).collect()),
            ArrayColumn::BigInt(
                rows.iter()
                    .map(|r| r.node_timeout_ms.unwrap_or(0))
                    .collect(),
            ),
        ];
        let inserted = match self.db.insert_arrays(text, columns).await {
            Ok(inserted) => inserted,
            Err(err) => {
                return match err.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => Ok(None),
                    Some(SqlErr::ForeignKeyConstraintViolation(_)) => Err(parent_deleted()),
                    _ => Err(err.into()),
                };
            }
        };
        // What the server stored of the JSON columns (jsonb orders keys).
        let mut stored: HashMap<String, [Option<Value>; 3]> = HashMap::with_capacity(rows.len());
        for row in &inserted {
            let json = |i: usize| row.try_get_by_index::<Option<Value>>(i);
            let id: String = row.try_get_by_index(0)?;
            stored.insert(id, [json(1)?, json(2)?, json(3)?]);
        }
        let mut created = Vec::with_capacity(rows.len());
        for r in rows {
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
                started_at: r.started_at,
                completed_at: r.completed_at,
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
                lease_expires_at: match r.waiting {
                    0 => r
                        .run_at
                        .filter(|due| r.status == ExecutionStatus::Created && *due > at),
                    _ => (r.status == ExecutionStatus::Created).then(after_all),
                },
                run_at: r.run_at,
                priority: r.priority,
                paused: r.paused,
                concurrency_key: r.concurrency_key.clone(),
                max_concurrency: r.max_concurrency,
                waiting: r.waiting,
                node_timeout_ms: r.node_timeout_ms,
            });
        }
        Ok(Some(created))
    }
}

/// The upsert in its own transaction: rolled back, so nothing is written,
/// when a row exists for another owner (it is not returned).
async fn upsert_in(
    txn: &sea_orm::DatabaseTransaction,
    upsert: sea_orm::Statement,
    expected: &[String],
) -> StoreResult<Vec<Execution>> {
    use sea_orm::ConnectionTrait;
    let written = match txn.query_all(upsert).await {
        Ok(rows) => run::decode_all(&rows)?,
        Err(err) if is_foreign_key_violation(&err) => return Err(parent_deleted()),
        Err(err) => return Err(err.into()),
    };
    if written.len() != expected.len() {
        let mine: HashSet<&str> = written.iter().map(|e| e.id.as_str()).collect();
        let theirs = expected.iter().find(|id| !mine.contains(id.as_str()));
        return Err(StoreError::Conflict(format!(
            "execution {} exists and belongs to another owner: nothing was written",
            theirs.map(String::as_str).unwrap_or("?")
        )));
    }
    let mut by_id: HashMap<String, Execution> =
        written.into_iter().map(|e| (e.id.clone(), e)).collect();
    Ok(expected.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The batch as the JSON array the upsert reads, in input order.
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
                "started": r.started_at.is_some(),
                "completed": r.completed_at.is_some(),
                "run_at": r.run_at.map(time_text),
                "priority": r.priority,
                "paused": r.paused,
                "deadline_at": r.deadline_at.map(time_text),
                "concurrency_key": r.concurrency_key,
                "max_concurrency": r.max_concurrency,
                "waiting": r.waiting,
                "node_timeout_ms": r.node_timeout_ms,
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

/// What a child takes from its parent (or a root from its own input).
#[derive(Clone)]
struct Parent {
    root: String,
    depth: i32,
    paused: bool,
    max_concurrency: Option<i32>,
    /// The run's node timeout, which the executions below get.
    node_timeout_ms: Option<i64>,
}

/// A key of `concurrency_limits`.
#[derive(sea_orm::FromQueryResult)]
struct KeyRow {
    key: String,
}
