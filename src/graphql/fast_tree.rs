//! The fast path for plain trees. TraceView's requests — `execution(id:)`
//! with scalar fields and nested `children`, and the flat `executionTree` —
//! are answered by building the response straight from the rows, level by
//! level: one SQL statement per level, as on the generic path, but no future,
//! context or intermediate object per field.
//!
//! `Plan::of_execution` / `Plan::of_tree_node` alone decide: a selection the
//! fast path fully understands (scalar fields, `__typename`, `childCount`,
//! `children` with literal or variable arguments, fragments, aliases; no
//! directives, no response key asked twice) gets a plan; anything else
//! (relations such as `parent`, `claim`, invalid arguments, …) goes the generic
//! way, which stays the reference: the suite compares both on random
//! selections, byte for byte modulo key order.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::indexmap::IndexMap;
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, SelectionField, ServerResult, Value,
};

use super::budget::RowBudget;
use super::error::OrGql;
use super::types::{Execution, ExecutionTreeNode, DEFAULT_CHILDREN, MAX_CHILDREN};
use crate::store::{self, ChildWindow, Cursor, ExecutionStore, Scope, TreeNode};

/// A scalar of `Execution`, read straight from the row.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    Id,
    FlowId,
    OwnerId,
    RootExecutionId,
    ParentExecutionId,
    Status,
    ExecutionDepth,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
    ErrorMessage,
    ErrorNodeId,
    Options,
    Integration,
    ExternalEvents,
    FailureCount,
    LastFailureReason,
    LastFailureAt,
    ProcessingStartedAt,
    ProcessingWorkerId,
    Cursor,
    Typename,
}

impl Scalar {
    fn of(field: &str) -> Option<Self> {
        Some(match field {
            "id" => Self::Id,
            "flowId" => Self::FlowId,
            "ownerId" => Self::OwnerId,
            "rootExecutionId" => Self::RootExecutionId,
            "parentExecutionId" => Self::ParentExecutionId,
            "status" => Self::Status,
            "executionDepth" => Self::ExecutionDepth,
            "createdAt" => Self::CreatedAt,
            "updatedAt" => Self::UpdatedAt,
            "startedAt" => Self::StartedAt,
            "completedAt" => Self::CompletedAt,
            "errorMessage" => Self::ErrorMessage,
            "errorNodeId" => Self::ErrorNodeId,
            "options" => Self::Options,
            "integration" => Self::Integration,
            "externalEvents" => Self::ExternalEvents,
            "failureCount" => Self::FailureCount,
            "lastFailureReason" => Self::LastFailureReason,
            "lastFailureAt" => Self::LastFailureAt,
            "processingStartedAt" => Self::ProcessingStartedAt,
            "processingWorkerId" => Self::ProcessingWorkerId,
            "cursor" => Self::Cursor,
            "__typename" => Self::Typename,
            _ => return None,
        })
    }

    /// The value the generic resolver of this field produces.
    fn value(self, row: &store::Execution) -> Value {
        fn text(s: &str) -> Value {
            Value::String(s.to_owned())
        }
        fn opt_text(s: &Option<String>) -> Value {
            s.as_deref().map(text).unwrap_or(Value::Null)
        }
        fn time(t: &chrono::DateTime<chrono::Utc>) -> Value {
            Value::String(t.to_rfc3339())
        }
        fn opt_time(t: &Option<chrono::DateTime<chrono::Utc>>) -> Value {
            t.as_ref().map(time).unwrap_or(Value::Null)
        }
        fn json(j: &Option<serde_json::Value>) -> Value {
            j.as_ref()
                .and_then(|j| Value::from_json(j.clone()).ok())
                .unwrap_or(Value::Null)
        }
        match self {
            Self::Id => text(&row.id),
            Self::FlowId => text(&row.flow_id),
            Self::OwnerId => text(&row.owner_id),
            Self::RootExecutionId => text(&row.root_execution_id),
            Self::ParentExecutionId => opt_text(&row.parent_execution_id),
            Self::Status => Value::Enum(Name::new(status_name(row.status))),
            Self::ExecutionDepth => Value::from(row.execution_depth),
            Self::CreatedAt => time(&row.created_at),
            Self::UpdatedAt => time(&row.updated_at),
            Self::StartedAt => opt_time(&row.started_at),
            Self::CompletedAt => opt_time(&row.completed_at),
            Self::ErrorMessage => opt_text(&row.error_message),
            Self::ErrorNodeId => opt_text(&row.error_node_id),
            Self::Options => json(&row.options),
            Self::Integration => json(&row.integration),
            Self::ExternalEvents => json(&row.external_events),
            Self::FailureCount => Value::from(row.failure_count),
            Self::LastFailureReason => opt_text(&row.last_failure_reason),
            Self::LastFailureAt => opt_time(&row.last_failure_at),
            Self::ProcessingStartedAt => opt_time(&row.processing_started_at),
            Self::ProcessingWorkerId => opt_text(&row.processing_worker_id),
            Self::Cursor => Value::String(Cursor::new(row.created_at, row.id.clone()).encode()),
            Self::Typename => text("Execution"),
        }
    }
}

fn status_name(status: store::ExecutionStatus) -> &'static str {
    use store::ExecutionStatus as S;
    match status {
        S::Created => "CREATED",
        S::Running => "RUNNING",
        S::Paused => "PAUSED",
        S::Completed => "COMPLETED",
        S::Failed => "FAILED",
        S::Stopped => "STOPPED",
    }
}

enum Entry {
    Scalar(Name, Scalar),
    /// One count statement for the whole level.
    ChildCount(Name),
    Children {
        key: Name,
        window: (i64, Option<Cursor>),
        plan: Plan,
    },
}

/// What to answer for each execution of a level, in response order.
pub struct Plan(Vec<Entry>);

/// Response keys of one selection, to refuse a key asked twice (merging
/// same-key selections is left to the generic path).
fn unique_key(seen: &mut Vec<Name>, field: &SelectionField<'_>) -> Option<Name> {
    let key = Name::new(field.alias().unwrap_or(field.name()));
    if seen.contains(&key) {
        return None;
    }
    seen.push(key.clone());
    Some(key)
}

impl Plan {
    /// The plan for an `Execution` selection, or None for the generic path.
    pub fn of_execution(field: &SelectionField<'_>) -> Option<Plan> {
        if field.selection_has_directives() {
            return None;
        }
        Self::execution_fields(field)
    }

    fn execution_fields(field: &SelectionField<'_>) -> Option<Plan> {
        let mut seen = Vec::new();
        let mut entries = Vec::new();
        for sub in field.selection_set() {
            let key = unique_key(&mut seen, &sub)?;
            if sub.name() == "children" {
                let mut first = i64::from(DEFAULT_CHILDREN);
                let mut after = None;
                for (name, value) in sub.arguments().ok()? {
                    match (name.as_str(), value) {
                        ("first", Value::Number(n)) => first = n.as_i64()?,
                        ("first", Value::Null) => {}
                        ("after", Value::String(s)) => after = Some(Cursor::decode(&s).ok()?),
                        ("after", Value::Null) => {}
                        _ => return None,
                    }
                }
                if !(0..=i64::from(MAX_CHILDREN)).contains(&first) {
                    return None;
                }
                entries.push(Entry::Children {
                    key,
                    window: (first, after),
                    plan: Self::execution_fields(&sub)?,
                });
            } else if sub.name() == "childCount" {
                entries.push(Entry::ChildCount(key));
            } else {
                entries.push(Entry::Scalar(key, Scalar::of(sub.name())?));
            }
        }
        Some(Plan(entries))
    }

    /// The plan for an `ExecutionTreeNode` selection (`executionTree`).
    pub fn of_tree_node(field: &SelectionField<'_>) -> Option<TreeNodePlan> {
        if field.selection_has_directives() {
            return None;
        }
        let mut seen = Vec::new();
        let mut entries = Vec::new();
        for sub in field.selection_set() {
            let key = unique_key(&mut seen, &sub)?;
            entries.push(match sub.name() {
                "id" => NodeEntry::Id(key),
                "parentId" => NodeEntry::ParentId(key),
                "level" => NodeEntry::Level(key),
                "__typename" => NodeEntry::Typename(key),
                "execution" => NodeEntry::Execution(key, Self::execution_fields(&sub)?),
                _ => return None,
            });
        }
        Some(TreeNodePlan(entries))
    }
}

enum NodeEntry {
    Id(Name),
    ParentId(Name),
    Level(Name),
    Typename(Name),
    Execution(Name, Plan),
}

pub struct TreeNodePlan(Vec<NodeEntry>);

/// Where the rows of a fast answer come from.
pub struct Source<'a> {
    pub store: &'a ExecutionStore,
    pub scope: &'a Scope,
    pub budget: Option<&'a RowBudget>,
}

type Object = IndexMap<Name, Value>;

impl Source<'_> {
    /// One object per row of a level, each with its subtree.
    fn level<'s>(
        &'s self,
        rows: &'s [store::Execution],
        plan: &'s Plan,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = async_graphql::Result<Vec<Object>>> + Send + 's>,
    > {
        Box::pin(async move {
            // Each `children` entry: one statement for the whole level.
            let mut nested: Vec<HashMap<&str, Vec<Value>>> = Vec::new();
            for entry in &plan.0 {
                let Entry::Children { window, plan, .. } = entry else {
                    continue;
                };
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut loaded = RowBudget::bounded(
                    self.budget,
                    async |max_rows| {
                        let window = ChildWindow {
                            per_parent: Some(window.0),
                            after: window.1.clone(),
                            max_rows,
                        };
                        let map = self
                            .store
                            .batch_get_direct_children_in(&ids, &window, self.scope)
                            .await?;
                        Ok(vec![map])
                    },
                    |m| m.values().map(Vec::len).sum(),
                )
                .await
                .gql()?
                .pop()
                .unwrap_or_default();
                // Children of the whole level, in parent order, resolved together.
                let mut children = Vec::new();
                let mut spans = Vec::with_capacity(rows.len());
                for row in rows {
                    let start = children.len();
                    // Moved, not cloned: each row is held once while the
                    // level below is built.
                    if let Some(list) = loaded.remove(&row.id) {
                        children.extend(list);
                    }
                    spans.push((row.id.as_str(), start, children.len()));
                }
                let mut objects = self.level(&children, plan).await?.into_iter();
                let mut by_parent = HashMap::with_capacity(rows.len());
                for (id, start, end) in spans {
                    let list: Vec<Value> = objects
                        .by_ref()
                        .take(end - start)
                        .map(Value::Object)
                        .collect();
                    by_parent.insert(id, list);
                }
                nested.push(by_parent);
            }
            let counts = if plan.0.iter().any(|e| matches!(e, Entry::ChildCount(_))) {
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                self.store
                    .count_direct_children(&ids, self.scope)
                    .await
                    .gql()?
            } else {
                HashMap::new()
            };
            Ok(rows
                .iter()
                .map(|row| {
                    let mut object = Object::with_capacity(plan.0.len());
                    let mut lists = nested.iter_mut();
                    for entry in &plan.0 {
                        match entry {
                            Entry::Scalar(key, scalar) => {
                                object.insert(key.clone(), scalar.value(row));
                            }
                            Entry::ChildCount(key) => {
                                let n = counts.get(&row.id).copied().unwrap_or(0) as i32;
                                object.insert(key.clone(), Value::from(n));
                            }
                            Entry::Children { key, .. } => {
                                let list = lists
                                    .next()
                                    .and_then(|m| m.remove(row.id.as_str()))
                                    .unwrap_or_default();
                                object.insert(key.clone(), Value::List(list));
                            }
                        }
                    }
                    object
                })
                .collect())
        })
    }

    /// `execution(id:)` answered by `plan`.
    pub async fn execution(
        &self,
        row: store::Execution,
        plan: &Plan,
    ) -> async_graphql::Result<Value> {
        let rows = [row];
        let mut objects = self.level(&rows, plan).await?;
        Ok(objects.pop().map(Value::Object).unwrap_or(Value::Null))
    }

    /// `executionTree` answered by `plan`: the nodes' `execution` objects
    /// are one level (their own `children`, if asked, load together).
    pub async fn tree(
        &self,
        nodes: Vec<TreeNode>,
        plan: &TreeNodePlan,
    ) -> async_graphql::Result<Value> {
        let (levels, rows): (Vec<i32>, Vec<store::Execution>) =
            nodes.into_iter().map(|n| (n.level, n.execution)).unzip();
        let mut executions = Vec::new();
        for entry in &plan.0 {
            if let NodeEntry::Execution(_, p) = entry {
                executions.push(self.level(&rows, p).await?.into_iter());
            }
        }
        let list = rows
            .iter()
            .zip(levels)
            .map(|(row, level)| {
                let mut object = Object::with_capacity(plan.0.len());
                let mut executions = executions.iter_mut();
                for entry in &plan.0 {
                    let (key, value) = match entry {
                        NodeEntry::Id(k) => (k, Value::String(row.id.clone())),
                        NodeEntry::ParentId(k) => (
                            k,
                            row.parent_execution_id
                                .clone()
                                .map(Value::String)
                                .unwrap_or(Value::Null),
                        ),
                        NodeEntry::Level(k) => (k, Value::from(level)),
                        NodeEntry::Typename(k) => (k, Value::String("ExecutionTreeNode".into())),
                        NodeEntry::Execution(k, _) => (
                            k,
                            executions
                                .next()
                                .and_then(Iterator::next)
                                .map(Value::Object)
                                .unwrap_or(Value::Null),
                        ),
                    };
                    object.insert(key.clone(), value);
                }
                Value::Object(object)
            })
            .collect();
        Ok(Value::List(list))
    }
}

/// A field's answer: built by the fast path, or the generic objects.
/// `T` is the generic type; the schema sees exactly `T`.
pub enum Answer<T> {
    Generic(T),
    /// Taken (not cloned) by the one resolve that serialises it.
    Built(Mutex<Option<Value>>),
}

impl<T> Answer<T> {
    pub fn built(value: Value) -> Self {
        Self::Built(Mutex::new(Some(value)))
    }
}

impl<T: OutputType> OutputType for Answer<T> {
    fn type_name() -> std::borrow::Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<async_graphql::parser::types::Field>,
    ) -> ServerResult<Value> {
        match self {
            Answer::Generic(inner) => inner.resolve(ctx, field).await,
            Answer::Built(value) => Ok(value
                .lock()
                .ok()
                .and_then(|mut v| v.take())
                .unwrap_or(Value::Null)),
        }
    }
}

/// Whether the fast path is on (a setting; off only to compare the paths).
#[derive(Clone, Copy)]
pub struct FastPath(pub bool);

pub type ExecutionAnswer = Answer<Execution>;
pub type TreeAnswer = Answer<Vec<ExecutionTreeNode>>;
