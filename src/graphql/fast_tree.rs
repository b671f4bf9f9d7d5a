//! The fast path for plain trees. TraceView's requests — `execution(id:)`
//! with scalar fields and nested `children`, and the flat `executionTree` —
//! are answered by loading the levels the selection needs through the same
//! `Level`s the resolvers use (one statement per relation per level), then
//! writing the JSON answer straight from the rows: no future, context or
//! `Value` per field, no allocation per field.
//!
//! `Plan::of_execution` / `Plan::of_tree_node` alone decide: a selection the
//! fast path fully understands (the field table's scalars, `__typename`,
//! `childCount`, `children` with literal or variable arguments, fragments,
//! aliases; no directives, no response key asked twice) gets a plan; anything
//! else (relations such as `parent`, `claim`, invalid arguments, …) goes the
//! generic way, which stays the reference: the suite compares both on random
//! selections of every field of the table, byte for byte.
//!
//! Over HTTP the written JSON is spliced into the response body in place of a
//! placeholder string (`RawAnswers`), so the answer is never turned into a
//! `Value` tree and back. Elsewhere (a query over the WebSocket) it is parsed
//! into a `Value` once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, SelectionField, ServerResult, Value,
};
use axum::body::Bytes;

use super::fields::{write_str, FieldValue, Id};
use super::levels::{Children, Level, Row, Window};
use super::loaders::Loaders;
use super::types::{Execution, ExecutionTreeNode, Scalar};
use crate::store::{self, Columns};

/// One response key of an `Execution` object, and what answers it.
struct Entry {
    key: Key,
    field: Field,
}

enum Field {
    Scalar(Scalar),
    Typename,
    /// One count statement for the whole level.
    ChildCount,
    Children {
        window: Window,
        plan: Plan,
    },
}

/// What to answer for each execution of a level, in response order, and
/// the columns that takes.
pub struct Plan {
    entries: Vec<Entry>,
    columns: Columns,
}

/// Response keys of one selection, to refuse a key asked twice (merging
/// same-key selections is left to the generic path).
fn unique_key(seen: &mut Vec<Name>, field: &SelectionField<'_>) -> Option<Key> {
    let key = Name::new(field.alias().unwrap_or(field.name()));
    if seen.contains(&key) {
        return None;
    }
    let written = Key::of(&key);
    seen.push(key);
    Some(written)
}

/// A response key as written before its value: `"key":`, escaped once
/// when the plan is made, not once per row.
struct Key(Box<[u8]>);

impl Key {
    fn of(name: &str) -> Key {
        let mut out = Vec::with_capacity(name.len() + 3);
        write_str(&mut out, name);
        out.push(b':');
        Key(out.into_boxed_slice())
    }
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
        let mut columns = Columns::KEYS;
        for sub in field.selection_set() {
            let key = unique_key(&mut seen, &sub)?;
            let field = match sub.name() {
                "children" => {
                    let (mut first, mut after) = (None, None);
                    for (name, value) in sub.arguments().ok()? {
                        match (name.as_str(), value) {
                            ("first", Value::Number(n)) => first = Some(n.as_i64()?),
                            ("after", Value::String(s)) => after = Some(s),
                            ("first" | "after", Value::Null) => {}
                            _ => return None,
                        }
                    }
                    // Refused arguments go the generic way, which reports them.
                    let mut window = Window::new(first, after.as_deref()).ok()?;
                    let plan = Self::execution_fields(&sub)?;
                    window.columns = plan.columns;
                    Field::Children { window, plan }
                }
                "childCount" => Field::ChildCount,
                "__typename" => Field::Typename,
                name => {
                    let scalar = Scalar::of(name)?;
                    columns = columns.with(scalar.column());
                    Field::Scalar(scalar)
                }
            };
            entries.push(Entry { key, field });
        }
        Some(Plan { entries, columns })
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
            let field = match sub.name() {
                "id" => NodeField::Id,
                "parentId" => NodeField::ParentId,
                "level" => NodeField::Level,
                "__typename" => NodeField::Typename,
                "execution" => NodeField::Execution(Self::execution_fields(&sub)?),
                _ => return None,
            };
            entries.push(NodeEntry { key, field });
        }
        Some(TreeNodePlan(entries))
    }

    /// Loads what this plan needs of `level` and of the levels below it.
    fn prefetch<'a>(
        &'a self,
        level: &'a Level,
        loaders: &'a Loaders,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = async_graphql::Result<Loaded>> + Send + 'a>,
    > {
        Box::pin(async move {
            let mut loaded = Loaded::default();
            for entry in &self.entries {
                match &entry.field {
                    Field::ChildCount => {
                        level.child_counts(loaders).await?;
                    }
                    Field::Children { window, plan } => {
                        let children = level.children(loaders, window).await?;
                        let below = plan.prefetch(&children.level, loaders).await?;
                        loaded.rows += children.level.len() + below.rows;
                        loaded.children.push((children, below));
                    }
                    Field::Scalar(_) | Field::Typename => {}
                }
            }
            Ok(loaded)
        })
    }

    /// A guess at the bytes of one row's object, to size the answer once
    /// (growing a buffer of megabytes copies it and faults fresh pages in).
    fn row_bytes(&self) -> usize {
        self.entries.len() * 40
    }

    /// Writes `row`'s object; `loaded` is what `prefetch` loaded for its level.
    fn write(&self, row: &store::Execution, level: &Level, loaded: &Loaded, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut below = loaded.children.iter();
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&entry.key.0);
            match &entry.field {
                Field::Scalar(scalar) => scalar.write(row, out),
                Field::Typename => write_str(out, "Execution"),
                Field::ChildCount => level.loaded_child_count(&row.id).write_json(out),
                Field::Children { plan, .. } => {
                    out.push(b'[');
                    if let Some((children, loaded)) = below.next() {
                        let rows = children.by_parent.get(&row.id).map(Vec::as_slice);
                        for (j, child) in rows.unwrap_or_default().iter().enumerate() {
                            if j > 0 {
                                out.push(b',');
                            }
                            plan.write(child, &children.level, loaded, out);
                        }
                    }
                    out.push(b']');
                }
            }
        }
        out.push(b'}');
    }
}

/// What `Plan::prefetch` loaded for a level: for each `children` entry of
/// the plan, in order, the children and what was loaded for them in turn.
#[derive(Default)]
struct Loaded {
    children: Vec<(Arc<Children>, Loaded)>,
    /// Rows loaded below the level, in all.
    rows: usize,
}

/// One response key of an `ExecutionTreeNode` object, and what answers it.
struct NodeEntry {
    key: Key,
    field: NodeField,
}

enum NodeField {
    Id,
    ParentId,
    Level,
    Typename,
    Execution(Plan),
}

pub struct TreeNodePlan(Vec<NodeEntry>);

impl TreeNodePlan {
    /// The columns the nodes' rows need: what every `execution` entry
    /// (aliases may ask for several) writes.
    pub fn columns(&self) -> Columns {
        self.0
            .iter()
            .filter_map(|entry| match &entry.field {
                NodeField::Execution(plan) => Some(plan.columns),
                _ => None,
            })
            .fold(Columns::KEYS, Columns::union)
    }
}

/// Answers written by the fast path (counted, so tests can tell that it
/// answered and not the generic path).
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// How many answers the fast path has written since the process started.
pub fn answers_written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

/// `execution(id:)` answered by `plan`.
pub async fn execution(
    loaders: &Loaders,
    raw: Option<&RawAnswers>,
    row: store::Execution,
    plan: &Plan,
) -> async_graphql::Result<Value> {
    let row: Row = Arc::new(row);
    let level = Level::of([&row]);
    let loaded = plan.prefetch(&level, loaders).await?;
    let mut out = Vec::with_capacity((1 + loaded.rows) * plan.row_bytes());
    plan.write(&row, &level, &loaded, &mut out);
    answer(raw, out)
}

/// `executionTree` answered by `plan`: the nodes' executions are one level
/// (their own `children`, if asked, load together).
pub async fn tree(
    loaders: &Loaders,
    raw: Option<&RawAnswers>,
    rows: Vec<Row>,
    plan: &TreeNodePlan,
) -> async_graphql::Result<Value> {
    let depths = store::tree_levels(&rows);
    let level = Level::of(&rows);
    let mut row_bytes = plan.0.len() * 24;
    // One per `execution` entry (aliases may ask for several), in order.
    let mut loaded = Vec::new();
    for entry in &plan.0 {
        if let NodeField::Execution(p) = &entry.field {
            loaded.push(p.prefetch(&level, loaders).await?);
            row_bytes += p.row_bytes();
        }
    }
    let mut out = Vec::with_capacity(rows.len() * row_bytes);
    out.push(b'[');
    let nothing = Loaded::default();
    for (n, (row, depth)) in rows.iter().zip(depths).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut loaded = loaded.iter();
        for (i, entry) in plan.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&entry.key.0);
            match &entry.field {
                NodeField::Id => Id(&row.id).write_json(&mut out),
                NodeField::ParentId => row
                    .parent_execution_id
                    .as_deref()
                    .map(Id)
                    .write_json(&mut out),
                NodeField::Level => depth.write_json(&mut out),
                NodeField::Typename => write_str(&mut out, "ExecutionTreeNode"),
                NodeField::Execution(p) => {
                    let below = loaded.next().unwrap_or(&nothing);
                    p.write(row, &level, below, &mut out);
                }
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    answer(raw, out)
}

fn answer(raw: Option<&RawAnswers>, json: Vec<u8>) -> async_graphql::Result<Value> {
    WRITTEN.fetch_add(1, Ordering::Relaxed);
    match raw {
        Some(raw) => Ok(raw.add(json)),
        None => serde_json::from_slice(&json).map_err(|e| super::error::internal(&e)),
    }
}

/// JSON answers written by the fast path during one HTTP request, spliced
/// into the response body where their placeholders are.
///
/// A placeholder is a string no client can write into its data: it carries
/// a random token drawn when the process starts.
#[derive(Clone, Default)]
pub struct RawAnswers(Arc<Mutex<Vec<Vec<u8>>>>);

static PLACEHOLDER: LazyLock<String> =
    LazyLock::new(|| format!("execstore-answer:{}:", uuid::Uuid::now_v7().simple()));

impl RawAnswers {
    /// Keeps `json`; the field's value is its placeholder.
    fn add(&self, json: Vec<u8>) -> Value {
        let mut answers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        answers.push(json);
        Value::String(format!("{}{}", *PLACEHOLDER, answers.len() - 1))
    }

    /// True when the fast path wrote nothing for this request.
    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// `body` cut at each placeholder, its answer in between: the pieces
    /// of the response, in order, nothing copied.
    pub fn splice(&self, body: &Bytes) -> Vec<Bytes> {
        let mut answers = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let marker = format!("\"{}", *PLACEHOLDER);
        let finder = memchr::memmem::Finder::new(marker.as_bytes());
        let mut pieces = Vec::with_capacity(2 * answers.len() + 1);
        let (mut start, mut from) = (0, 0);
        while let Some(found) = finder.find(&body[from..]) {
            let at = from + found;
            let after = at + marker.len();
            let digits = body[after..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let index = std::str::from_utf8(&body[after..after + digits])
                .ok()
                .and_then(|d| d.parse::<usize>().ok());
            let closed = body.get(after + digits) == Some(&b'"');
            match index.and_then(|i| answers.get_mut(i)) {
                // Each answer once (an empty one was taken already).
                Some(answer) if closed && !answer.is_empty() => {
                    pieces.push(body.slice(start..at));
                    pieces.push(Bytes::from(std::mem::take(answer)));
                    start = after + digits + 1;
                    from = start;
                }
                // Not one of ours after all: keep it as it is.
                _ => from = after,
            }
        }
        pieces.push(body.slice(start..));
        let unplaced = answers.iter().filter(|a| !a.is_empty()).count();
        if unplaced > 0 {
            // An answer whose placeholder is not in the body (the field was
            // nulled by an error elsewhere in its parent): nothing to place.
            tracing::debug!(unplaced, "fast-path answers without a placeholder");
        }
        pieces
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
