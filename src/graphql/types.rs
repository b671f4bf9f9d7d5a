//! GraphQL object types. `Execution` wraps the store's row; its relations
//! resolve through the request's DataLoaders.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;
use tokio::sync::OnceCell;

use super::error::{internal, GqlResult, OrGql};
use super::loaders::{ChildKey, LoadError, Loaders};
use crate::store::{self, ClaimRejection as StoreRejection};
use async_graphql::dataloader::{DataLoader, Loader};

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
}

pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> GqlResult<&'a Loaders> {
    ctx.data::<Loaders>()
        .map_err(|e| internal(&format!("request without loaders: {}", e.message)))
}

/// Executions that were fetched together (one page, one tree, one level of
/// children). Each relation of theirs is loaded ONCE for the whole level: the
/// first resolver to ask hands every id of the level to the DataLoader in one
/// `load_many`, the others wait on the same cell. So a nested query costs one
/// statement per level and per relation, with no timer deciding the batches.
/// A row shared by the level maps and the objects resolved from it.
type Row = Arc<store::Execution>;

/// Rows loaded for a level, and the level they form in turn.
type Loaded<V> = OnceCell<(HashMap<String, V>, Arc<Level>)>;

pub struct Level {
    ids: Vec<String>,
    parent_ids: Vec<String>,
    root_ids: Vec<String>,
    /// One load per window asked of this level (aliases may differ).
    children: std::sync::Mutex<HashMap<ChildWindowKey, Arc<Loaded<Vec<Row>>>>>,
    parents: Loaded<Row>,
    roots: Loaded<Row>,
    child_counts: OnceCell<HashMap<String, i64>>,
    claims: OnceCell<HashMap<String, store::Claim>>,
    recovery: OnceCell<HashMap<String, Vec<store::Recovery>>>,
}

impl Level {
    fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Arc<Level> {
        let mut ids = Vec::new();
        let mut parent_ids = HashSet::new();
        let mut root_ids = HashSet::new();
        for row in rows {
            ids.push(row.id.clone());
            if let Some(parent) = &row.parent_execution_id {
                parent_ids.insert(parent.clone());
            }
            if row.root_execution_id != row.id {
                root_ids.insert(row.root_execution_id.clone());
            }
        }
        Arc::new(Level {
            ids,
            parent_ids: parent_ids.into_iter().collect(),
            root_ids: root_ids.into_iter().collect(),
            children: Default::default(),
            parents: OnceCell::new(),
            roots: OnceCell::new(),
            child_counts: OnceCell::new(),
            claims: OnceCell::new(),
            recovery: OnceCell::new(),
        })
    }
}

/// Loads `ids` (the whole level) through `loader` once; later callers of the
/// same level get the same map.
async fn per_level<'a, L, V>(
    cell: &'a OnceCell<HashMap<String, V>>,
    loader: &DataLoader<L>,
    ids: &[String],
) -> GqlResult<&'a HashMap<String, V>>
where
    L: Loader<String, Value = V, Error = LoadError>,
    V: Send + Sync + Clone + 'static,
{
    cell.get_or_try_init(|| loader.load_many(ids.iter().cloned()))
        .await
}

/// `children(first:, after:)` as a cache key of a level.
type ChildWindowKey = (i64, Option<store::Cursor>);

/// Children per parent when `children` is asked without `first`.
pub const DEFAULT_CHILDREN: i32 = 100;
/// The most children per parent one `children` field returns.
pub const MAX_CHILDREN: i32 = 1000;

/// One execution of a flow.
pub struct Execution {
    row: Row,
    level: Arc<Level>,
}

impl Execution {
    /// Wraps executions fetched together, so their relations batch together.
    pub fn level(rows: Vec<store::Execution>) -> Vec<Execution> {
        let rows: Vec<Row> = rows.into_iter().map(Arc::new).collect();
        let level = Level::of(&rows);
        rows.into_iter()
            .map(|row| Execution {
                row,
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
        let row = Arc::new(row);
        let level = Level::of([&row]);
        Execution { row, level }
    }

    pub fn row(&self) -> &store::Execution {
        &self.row
    }

    async fn related(
        &self,
        ctx: &Context<'_>,
        cell: &Loaded<Row>,
        keys: &[String],
        key: &str,
    ) -> GqlResult<Option<Execution>> {
        let (rows, level) = cell
            .get_or_try_init(|| async {
                let rows: HashMap<String, Row> = loaders(ctx)?
                    .executions
                    .load_many(keys.iter().cloned())
                    .await?
                    .into_iter()
                    .map(|(id, row)| (id, Arc::new(row)))
                    .collect();
                let level = Level::of(rows.values());
                Ok::<_, async_graphql::Error>((rows, level))
            })
            .await?;
        Ok(rows.get(key).map(|row| Execution {
            row: row.clone(),
            level: level.clone(),
        }))
    }
}

#[Object]
impl Execution {
    async fn id(&self) -> ID {
        ID(self.row.id.clone())
    }
    async fn flow_id(&self) -> ID {
        ID(self.row.flow_id.clone())
    }
    async fn owner_id(&self) -> ID {
        ID(self.row.owner_id.clone())
    }
    async fn root_execution_id(&self) -> ID {
        ID(self.row.root_execution_id.clone())
    }
    async fn parent_execution_id(&self) -> Option<ID> {
        self.row.parent_execution_id.clone().map(ID)
    }
    async fn status(&self) -> ExecutionStatus {
        self.row.status.into()
    }
    /// 0 for a root, the parent's depth + 1 otherwise.
    async fn execution_depth(&self) -> i32 {
        self.row.execution_depth
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.row.started_at
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.row.completed_at
    }
    async fn error_message(&self) -> Option<&str> {
        self.row.error_message.as_deref()
    }
    async fn error_node_id(&self) -> Option<&str> {
        self.row.error_node_id.as_deref()
    }
    async fn options(&self) -> Option<Json<&JsonValue>> {
        self.row.options.as_ref().map(Json)
    }
    async fn integration(&self) -> Option<Json<&JsonValue>> {
        self.row.integration.as_ref().map(Json)
    }
    async fn external_events(&self) -> Option<Json<&JsonValue>> {
        self.row.external_events.as_ref().map(Json)
    }
    async fn failure_count(&self) -> i32 {
        self.row.failure_count
    }
    async fn last_failure_reason(&self) -> Option<&str> {
        self.row.last_failure_reason.as_deref()
    }
    async fn last_failure_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_failure_at
    }
    async fn processing_started_at(&self) -> Option<DateTime<Utc>> {
        self.row.processing_started_at
    }
    async fn processing_worker_id(&self) -> Option<&str> {
        self.row.processing_worker_id.as_deref()
    }

    /// The parent execution (null for a root).
    async fn parent(&self, ctx: &Context<'_>) -> GqlResult<Option<Execution>> {
        let Some(parent_id) = &self.row.parent_execution_id else {
            return Ok(None);
        };
        self.related(ctx, &self.level.parents, &self.level.parent_ids, parent_id)
            .await
    }

    /// The root of this execution's tree (itself for a root).
    async fn root(&self, ctx: &Context<'_>) -> GqlResult<Execution> {
        if self.row.root_execution_id == self.row.id {
            return Ok(Execution {
                row: self.row.clone(),
                level: self.level.clone(),
            });
        }
        let root = self
            .related(
                ctx,
                &self.level.roots,
                &self.level.root_ids,
                &self.row.root_execution_id,
            )
            .await?;
        root.ok_or_else(|| {
            super::error::coded(
                super::error::code::NOT_FOUND,
                format!(
                    "root execution {} is not visible",
                    self.row.root_execution_id
                ),
            )
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
        let first = first.unwrap_or(DEFAULT_CHILDREN);
        if !(0..=MAX_CHILDREN).contains(&first) {
            return Err(super::error::bad_input(
                "first",
                format!("must be between 0 and {MAX_CHILDREN}"),
            ));
        }
        let after = store::Cursor::parse_opt(after.as_deref()).gql()?;
        let window = (i64::from(first), after);
        let cell = {
            let mut cells = self
                .level
                .children
                .lock()
                .map_err(|_| internal(&"children cache poisoned"))?;
            cells.entry(window.clone()).or_default().clone()
        };
        let (children, level) = cell
            .get_or_try_init(|| async {
                let keys = self.level.ids.iter().map(|id| ChildKey {
                    parent: id.clone(),
                    first: window.0,
                    after: window.1.clone(),
                });
                let children: HashMap<String, Vec<Row>> = loaders(ctx)?
                    .children
                    .load_many(keys)
                    .await?
                    .into_iter()
                    .map(|(key, rows)| (key.parent, rows.into_iter().map(Arc::new).collect()))
                    .collect();
                let level = Level::of(children.values().flatten());
                Ok::<_, async_graphql::Error>((children, level))
            })
            .await?;
        Ok(children
            .get(&self.row.id)
            .map(|rows| {
                rows.iter()
                    .map(|row| Execution {
                        row: row.clone(),
                        level: level.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// An opaque cursor for this execution's `(createdAt, id)`: `after` of
    /// `children` and of the feeds takes it.
    async fn cursor(&self) -> String {
        store::Cursor::new(self.row.created_at, self.row.id.clone()).encode()
    }

    /// Number of direct children.
    async fn child_count(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let loader = &loaders(ctx)?.child_counts;
        let counts = per_level(&self.level.child_counts, loader, &self.level.ids).await?;
        Ok(counts.get(&self.row.id).copied().unwrap_or(0) as i32)
    }

    /// The claim row, in whatever status; null when never claimed.
    async fn claim(&self, ctx: &Context<'_>) -> GqlResult<Option<ExecutionClaim>> {
        let loader = &loaders(ctx)?.claims;
        let claims = per_level(&self.level.claims, loader, &self.level.ids).await?;
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
            .get_ancestors(&self.row.id, &scope)
            .await
            .gql()?;
        super::budget::RowBudget::charge_in(ctx, rows.len()).gql()?;
        Ok(Execution::level(rows))
    }

    /// Recoveries of this execution, newest first.
    async fn recovery_history(&self, ctx: &Context<'_>) -> GqlResult<Vec<ExecutionRecovery>> {
        let loader = &loaders(ctx)?.recovery;
        let histories = per_level(&self.level.recovery, loader, &self.level.ids).await?;
        Ok(histories
            .get(&self.row.id)
            .map(|rows| rows.iter().cloned().map(ExecutionRecovery::from).collect())
            .unwrap_or_default())
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
