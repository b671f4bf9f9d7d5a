//! GraphQL object types. `Execution` wraps the store's row and the level it
//! was fetched with (`levels.rs`): its relations load once per level.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::error::{internal, GqlResult, OrGql};
use super::fields::{execution_object, CursorOf, Id};
use super::levels::{Level, Row, Window};
use super::loaders::Loaders;
use crate::store::{self, ClaimRejection as StoreRejection};

// The GraphQL enums mirror the store's; `remote` generates the `From`
// conversions both ways (a variant added to one and not the other fails to
// compile).

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "store::ExecutionStatus")]
pub enum ExecutionStatus {
    Created,
    Running,
    Paused,
    Completed,
    Failed,
    Stopped,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "store::ClaimStatus")]
pub enum ClaimStatus {
    Active,
    Released,
    Expired,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "StoreRejection")]
pub enum ClaimRejection {
    NotFound,
    Terminal,
    HeldByOther,
    /// It waits PAUSED under a paused execution until `resumeExecution`.
    Paused,
    /// Its run (`options.execution.maxConcurrency`) or its
    /// `concurrencyKey` is at its limit: it waits for a slot, and is handed
    /// out once one is free.
    ConcurrencyLimit,
}

/// A key's concurrency limit (`setConcurrencyLimit`).
#[derive(async_graphql::SimpleObject)]
pub struct ConcurrencyLimit {
    pub key: String,
    /// At most this many executions of the key hold a slot at once.
    pub limit: i32,
    /// How many hold one now: unfinished executions of the key that were
    /// admitted (claimed, or next in the queue).
    pub running: i32,
}

impl From<store::ConcurrencyLimit> for ConcurrencyLimit {
    fn from(l: store::ConcurrencyLimit) -> Self {
        Self {
            key: l.key,
            limit: l.limit,
            running: i32::try_from(l.running).unwrap_or(i32::MAX),
        }
    }
}

pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> GqlResult<&'a Loaders> {
    ctx.data::<Loaders>()
        .map_err(|e| internal(&format!("request without loaders: {}", e.message)))
}

/// One execution of a flow.
pub struct Execution {
    row: Row,
    level: Arc<Level>,
}

impl Execution {
    /// Wraps executions fetched together, so their relations batch together.
    pub fn level(rows: Vec<store::Execution>) -> Vec<Execution> {
        Self::level_shared(rows.into_iter().map(Arc::new).collect())
    }

    /// `level` of rows already shared.
    pub fn level_shared(rows: Vec<Row>) -> Vec<Execution> {
        let level = Level::of(&rows);
        Self::of_level(&rows, &level)
    }

    /// `rows` of an already formed `level`.
    fn of_level(rows: &[Row], level: &Arc<Level>) -> Vec<Execution> {
        rows.iter()
            .map(|row| Execution {
                row: row.clone(),
                level: level.clone(),
            })
            .collect()
    }

    /// A row shared with others (an event's execution, handed to every
    /// subscriber of its root).
    pub fn shared(row: Arc<store::Execution>) -> Execution {
        let level = Level::of([&row]);
        Execution { row, level }
    }

    pub fn single(row: store::Execution) -> Execution {
        Self::shared(Arc::new(row))
    }

    pub fn row(&self) -> &store::Execution {
        &self.row
    }
}

execution_object! {
    scalars {
        "id" id: ID = |row| Id(&row.id);
        "flowId" flow_id: ID = |row| Id(&row.flow_id);
        "ownerId" owner_id: ID = |row| Id(&row.owner_id);
        "rootExecutionId" root_execution_id: ID = |row| Id(&row.root_execution_id);
        "parentExecutionId" parent_execution_id: Option<ID> =
            |row| row.parent_execution_id.as_deref().map(Id);
        "status" status: ExecutionStatus = |row| row.status;
        /// 0 for a root, the parent's depth + 1 otherwise.
        "executionDepth" execution_depth: i32 = |row| row.execution_depth;
        "createdAt" created_at: DateTime<Utc> = |row| row.created_at;
        "updatedAt" updated_at: DateTime<Utc> = |row| row.updated_at;
        "startedAt" started_at: Option<DateTime<Utc>> = |row| row.started_at;
        "completedAt" completed_at: Option<DateTime<Utc>> = |row| row.completed_at;
        "errorMessage" error_message: Option<&str> = |row| row.error_message.as_deref();
        "errorNodeId" error_node_id: Option<&str> = |row| row.error_node_id.as_deref();
        "options" options: Option<Json<&JsonValue>> = |row| row.options.as_ref();
        "integration" integration: Option<Json<&JsonValue>> = |row| row.integration.as_ref();
        "externalEvents" external_events: Option<Json<&JsonValue>> =
            |row| row.external_events.as_ref();
        "failureCount" failure_count: i32 = |row| row.failure_count;
        "lastFailureReason" last_failure_reason: Option<&str> =
            |row| row.last_failure_reason.as_deref();
        "lastFailureAt" last_failure_at: Option<DateTime<Utc>> = |row| row.last_failure_at;
        "processingStartedAt" processing_started_at: Option<DateTime<Utc>> =
            |row| row.processing_started_at;
        "processingWorkerId" processing_worker_id: Option<&str> =
            |row| row.processing_worker_id.as_deref();
        /// When it may first be handed out (`runAt` of its create, or the
        /// time a retry waits for; its creation by default).
        "runAt" run_at: DateTime<Utc> = |row| row.due_at();
        /// Higher first (−100 to 100; 0 by default): a pull hands out the
        /// due executions of the highest priority first.
        "priority" priority: i32 = |row| row.priority;
        /// Under a paused execution: true from `pauseExecution` to
        /// `resumeExecution` of it or an execution above it, whatever its
        /// status.
        "paused" paused: bool = |row| row.paused;
        /// The key whose concurrency limit it counts against (null: none).
        "concurrencyKey" concurrency_key: Option<&str> = |row| row.concurrency_key.as_deref();
        /// An opaque cursor for this execution's `(createdAt, id)`: `after` of
        /// `children` and of the feeds takes it.
        "cursor" cursor: String = |row| CursorOf(row);
    }
    relations {
        /// The parent execution (null for a root).
        async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
            let Some(parent_id) = &self.row.parent_execution_id else {
                return Ok(None);
            };
            let parents = self.level.parents(loaders(ctx)?).await?;
            Ok(parents.by_id.get(parent_id).map(|row| Execution {
                row: row.clone(),
                level: parents.level.clone(),
            }))
        }

        /// The root of this execution's tree (itself for a root).
        async fn root(&self, ctx: &Context<'_>) -> GqlResult<Execution> {
            if self.row.root_execution_id == self.row.id {
                return Ok(Execution {
                    row: self.row.clone(),
                    level: self.level.clone(),
                });
            }
            let roots = self.level.roots(loaders(ctx)?).await?;
            let root = roots.by_id.get(&self.row.root_execution_id).ok_or_else(|| {
                super::error::coded(
                    super::error::code::NOT_FOUND,
                    format!(
                        "root execution {} is not visible",
                        self.row.root_execution_id
                    ),
                )
            })?;
            Ok(Execution {
                row: root.clone(),
                level: roots.level.clone(),
            })
        }

        /// Direct children, oldest first (createdAt, id): at most `first` of
        /// them (default 100, at most 1000), after the child whose `cursor` is
        /// `after`. Fewer than `childCount` means the list was cut: continue with
        /// `after` set to the last child's `cursor`.
        async fn children(
            &self,
            ctx: &Context<'_>,
            #[graphql(default = 100)] first: Option<i32>,
            after: Option<String>,
        ) -> GqlResult<Vec<Execution>> {
            let window = Window::new(first.map(i64::from), after.as_deref()).gql()?;
            let children = self.level.children(loaders(ctx)?, &window).await?;
            Ok(children
                .by_parent
                .get(&self.row.id)
                .map(|rows| Self::of_level(rows, &children.level))
                .unwrap_or_default())
        }

        /// Number of direct children.
        async fn child_count(&self, ctx: &Context<'_>) -> GqlResult<i32> {
            self.level.child_counts(loaders(ctx)?).await?;
            Ok(self.level.loaded_child_count(&self.row.id))
        }

        /// The claim row, in whatever status; null when never claimed.
        async fn claim(&self, ctx: &Context<'_>) -> GqlResult<Option<ExecutionClaim>> {
            let claims = self.level.claims(loaders(ctx)?).await?;
            Ok(claims.get(&self.row.id).cloned().map(ExecutionClaim::from))
        }

        /// The executions above this one, the root first (empty for a root):
        /// one walk up the parent links.
        async fn ancestors(&self, ctx: &Context<'_>) -> GqlResult<Vec<Execution>> {
            if self.row.parent_execution_id.is_none() {
                return Ok(Vec::new());
            }
            let scope = super::viewer(ctx)?.scope();
            let rows = super::store(ctx)?
                .reads()
                .get_ancestors(&self.row.id, &scope)
                .await
                .gql()?;
            super::budget::RowBudget::charge_in(ctx, rows.len()).gql()?;
            Ok(Execution::level(rows))
        }

        /// Recoveries of this execution, newest first.
        async fn recovery_history(&self, ctx: &Context<'_>) -> GqlResult<Vec<ExecutionRecovery>> {
            let histories = self.level.recovery_history(loaders(ctx)?).await?;
            Ok(histories
                .get(&self.row.id)
                .map(|rows| rows.iter().cloned().map(ExecutionRecovery::from).collect())
                .unwrap_or_default())
        }
    }
}

/// A worker's claim on an execution.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ExecutionClaim {
    pub execution_id: ID,
    pub worker_id: String,
    pub claimed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub status: ClaimStatus,
}

#[ComplexObject]
impl ExecutionClaim {
    /// The claimed execution.
    async fn execution(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let loaded = loaders(ctx)?
            .claim_executions
            .load_one(self.execution_id.0.clone())
            .await?;
        Ok(loaded.map(Execution::single))
    }
}

impl From<store::Claim> for ExecutionClaim {
    fn from(c: store::Claim) -> Self {
        Self {
            execution_id: ID(c.execution_id),
            worker_id: c.worker_id,
            claimed_at: c.claimed_at,
            expires_at: c.expires_at,
            heartbeat_at: c.heartbeat_at,
            status: c.status.into(),
        }
    }
}

/// One recovery of an execution whose worker died.
#[derive(SimpleObject)]
pub struct ExecutionRecovery {
    pub id: ID,
    pub execution_id: ID,
    pub recovered_at: DateTime<Utc>,
    pub recovered_by_worker: String,
    pub recovery_reason: String,
    pub previous_status: Option<String>,
    pub previous_worker_id: Option<String>,
}

impl From<store::Recovery> for ExecutionRecovery {
    fn from(r: store::Recovery) -> Self {
        Self {
            id: ID(r.id.to_string()),
            execution_id: ID(r.execution_id),
            recovered_at: r.recovered_at,
            recovered_by_worker: r.recovered_by_worker,
            recovery_reason: r.recovery_reason,
            previous_status: r.previous_status,
            previous_worker_id: r.previous_worker_id,
        }
    }
}

/// A depth-0 execution with the shape of its tree.
#[derive(SimpleObject)]
pub struct RootExecution {
    pub execution: Execution,
    /// Deepest depth below the root (0 when it has no descendants).
    pub levels: i32,
    /// Number of descendants, the root excluded.
    pub total_nested: i32,
}

/// A flow with at least one run.
pub struct Flow {
    flow_id: ID,
    last_run: Execution,
}

impl Flow {
    /// A page of flows; their last runs batch their relations together.
    pub fn page(flows: Vec<store::Flow>) -> Vec<Flow> {
        let ids: Vec<ID> = flows.iter().map(|f| ID(f.flow_id().to_owned())).collect();
        let runs = Execution::level(flows.into_iter().map(|f| f.last_run).collect());
        ids.into_iter()
            .zip(runs)
            .map(|(flow_id, last_run)| Flow { flow_id, last_run })
            .collect()
    }
}

#[Object]
impl Flow {
    async fn flow_id(&self) -> &ID {
        &self.flow_id
    }

    /// When its newest run was created.
    async fn last_run_at(&self) -> DateTime<Utc> {
        self.last_run.row().created_at
    }

    /// Its newest run (root execution).
    async fn last_run(&self) -> &Execution {
        &self.last_run
    }
}

/// A node of `executionTree`.
#[derive(SimpleObject)]
pub struct ExecutionTreeNode {
    pub id: ID,
    pub parent_id: Option<ID>,
    /// 0 for the execution the tree was asked for.
    pub level: i32,
    pub execution: Execution,
}

#[derive(SimpleObject)]
pub struct ExecutionStats {
    pub total: i32,
    pub created: i32,
    pub running: i32,
    pub paused: i32,
    pub completed: i32,
    pub failed: i32,
    pub stopped: i32,
    pub max_depth: i32,
    pub first_created_at: Option<DateTime<Utc>>,
    pub last_completed_at: Option<DateTime<Utc>>,
    /// completed ÷ minutes between firstCreatedAt and lastCompletedAt.
    pub completed_per_minute: Option<f64>,
}

fn count(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl From<store::ExecutionStats> for ExecutionStats {
    fn from(s: store::ExecutionStats) -> Self {
        Self {
            total: count(s.total),
            created: count(s.created),
            running: count(s.running),
            paused: count(s.paused),
            completed: count(s.completed),
            failed: count(s.failed),
            stopped: count(s.stopped),
            max_depth: count(s.max_depth),
            first_created_at: s.first_created_at,
            last_completed_at: s.last_completed_at,
            completed_per_minute: s.completed_per_minute,
        }
    }
}

impl RootExecution {
    pub fn new(execution: Execution, levels: i64, total_nested: i64) -> Self {
        Self {
            execution,
            levels: count(levels),
            total_nested: count(total_nested),
        }
    }
}

/// The result of `claimExecution`.
#[derive(SimpleObject)]
pub struct ClaimOutcome {
    pub acquired: bool,
    pub claim: Option<ExecutionClaim>,
    /// Why it was not acquired; null when it was.
    pub rejection: Option<ClaimRejection>,
}

#[derive(InputObject)]
pub struct CreateExecutionInput {
    /// Client-supplied id; the server generates a UUIDv7 when absent.
    pub id: Option<ID>,
    pub flow_id: ID,
    pub owner_id: ID,
    pub parent_execution_id: Option<ID>,
    /// Defaults to CREATED.
    pub status: Option<ExecutionStatus>,
    pub options: Option<Json<JsonValue>>,
    pub integration: Option<Json<JsonValue>>,
    pub external_events: Option<Json<JsonValue>>,
    /// When it may first be handed out; by default at its creation. A pull
    /// never hands it out earlier.
    pub run_at: Option<DateTime<Utc>>,
    /// −100 to 100, higher first; 0 by default.
    pub priority: Option<i32>,
    /// The key whose concurrency limit (`setConcurrencyLimit`) it counts
    /// against: one per outside API, or per tenant. Kept from the first
    /// create.
    pub concurrency_key: Option<String>,
}

impl From<CreateExecutionInput> for store::CreateExecution {
    fn from(input: CreateExecutionInput) -> Self {
        Self {
            id: input.id.map(|id| id.0),
            flow_id: input.flow_id.0,
            owner_id: input.owner_id.0,
            parent_execution_id: input.parent_execution_id.map(|id| id.0),
            status: input.status.map(Into::into),
            options: input.options.map(|j| j.0),
            integration: input.integration.map(|j| j.0),
            external_events: input.external_events.map(|j| j.0),
            run_at: input.run_at,
            priority: input.priority,
            concurrency_key: input.concurrency_key,
        }
    }
}

#[derive(InputObject)]
pub struct UpdateExecutionStatusInput {
    pub execution_id: ID,
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub processing_started_at: Option<DateTime<Utc>>,
    pub processing_worker_id: Option<String>,
    pub failure_count: Option<i32>,
    pub last_failure_reason: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl From<UpdateExecutionStatusInput> for store::StatusUpdate {
    fn from(input: UpdateExecutionStatusInput) -> Self {
        Self {
            execution_id: input.execution_id.0,
            status: input.status.into(),
            error_message: input.error_message,
            error_node_id: input.error_node_id,
            started_at: input.started_at,
            completed_at: input.completed_at,
            processing_started_at: input.processing_started_at,
            processing_worker_id: input.processing_worker_id,
            failure_count: input.failure_count,
            last_failure_reason: input.last_failure_reason,
            last_failure_at: input.last_failure_at,
        }
    }
}

/// The end of a worker's round (`finishExecution`).
#[derive(InputObject)]
pub struct FinishExecutionInput {
    pub execution_id: ID,
    /// The worker that holds the claim.
    pub worker_id: String,
    /// COMPLETED, FAILED or STOPPED; CREATED puts it back in the queue for a
    /// retry (failureCount + 1, lastFailureReason, lastFailureAt).
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    /// Recorded as lastFailureReason (a retry without it records errorMessage).
    pub failure_reason: Option<String>,
    /// A retry (status CREATED) is due again after this many milliseconds,
    /// instead of its backoff.
    pub retry_in_ms: Option<i32>,
}

impl From<FinishExecutionInput> for store::Finish {
    fn from(input: FinishExecutionInput) -> Self {
        Self {
            execution_id: input.execution_id.0,
            worker_id: input.worker_id,
            status: input.status.into(),
            error_message: input.error_message,
            error_node_id: input.error_node_id,
            failure_reason: input.failure_reason,
            retry_in_ms: input.retry_in_ms.map(i64::from),
        }
    }
}

/// One item of `finishExecutions`.
#[derive(SimpleObject)]
pub struct FinishOutcome {
    pub execution_id: ID,
    /// True when this item was finished (its claim released with it).
    pub finished: bool,
    /// Why not: `CONFLICT` (no live claim held by that worker: another's,
    /// released, lapsed) or `NOT_FOUND`; null when finished.
    pub code: Option<String>,
    /// The execution after the finish; null when not finished.
    pub execution: Option<Execution>,
}

/// One item of `extendClaims`.
#[derive(SimpleObject)]
pub struct ClaimExtension {
    pub execution_id: ID,
    /// True when the worker held a live claim on it, now extended.
    pub extended: bool,
    /// The claim's new expiry; null when not extended.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why not, when it is more than "not held": `CANCELLED` (the execution
    /// was cancelled: stop working on it). Null otherwise.
    pub code: Option<String>,
}

#[derive(InputObject)]
pub struct RecordRecoveryInput {
    pub execution_id: ID,
    pub worker_id: String,
    pub reason: String,
    pub previous_status: Option<String>,
    pub previous_worker_id: Option<String>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "store::EventKind")]
pub enum ExecutionEventKind {
    Created,
    Updated,
    Deleted,
}

/// A change in a root's tree.
#[derive(SimpleObject)]
pub struct ExecutionEvent {
    pub kind: ExecutionEventKind,
    pub execution_id: ID,
    /// This event's place in the log: pass it as `executionEvents(after:)`
    /// to resume right after it.
    pub cursor: String,
    /// The execution as it is when the event is delivered (at least as new
    /// as the change); null for DELETED, and when it was deleted since (its
    /// DELETED event follows).
    pub execution: Option<Execution>,
}
