//! Levels: executions fetched together (a page, a tree, the children of one
//! level), and the one load per relation that serves all of them.
//!
//! This is where a nested query's cost is decided, for both ways of
//! answering it: the generic resolvers (`types.rs`) and the fast path
//! (`fast_tree.rs`) ask a `Level` for its children, child counts, claims,
//! recoveries, parents and roots, and each of those is ONE statement for the
//! whole level, made by the first field that asks; the others wait on the
//! same cell. So a tree of depth d costs d + 1 statements whatever its width,
//! with no timer deciding the batches.
//!
//! `children` goes through a DataLoader over `batch_get_direct_children`
//! (`ChildrenLoader`): a level hands it all its parents at once and gets one
//! statement for them, within the request's row budget. Each window asked of
//! a level (aliases may ask for different `first`/`after`) is a load of its
//! own, one after another: a level's load holds the budget's gate, so the
//! budget sees each load whole. The other relations call the store
//! directly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::budget::RowBudget;
use super::error::{internal, GqlResult, OrGql};
use super::loaders::{ChildKey, Loaders};
use crate::store::{self, Columns, Cursor, StoreError, StoreResult};

/// A row shared by the level maps and the objects resolved from it.
pub type Row = Arc<store::Execution>;

/// `children(first:, after:)`: which children of each parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub first: i64,
    pub after: Option<Cursor>,
    /// The columns its rows carry: all of them, unless the fast path asks
    /// for what its selection writes.
    pub columns: Columns,
}

impl Window {
    /// Children per parent when `children` is asked without `first`.
    pub const DEFAULT_FIRST: i32 = 100;
    /// The most children per parent one `children` field returns.
    pub const MAX_FIRST: i32 = 1000;

    /// The window `children`'s arguments ask for, or why they are refused.
    pub fn new(first: Option<i64>, after: Option<&str>) -> StoreResult<Window> {
        let first = first.unwrap_or(i64::from(Self::DEFAULT_FIRST));
        if !(0..=i64::from(Self::MAX_FIRST)).contains(&first) {
            return Err(StoreError::invalid(
                "first",
                format!("must be between 0 and {}", Self::MAX_FIRST),
            ));
        }
        Ok(Window {
            first,
            after: Cursor::parse_opt(after)?,
            columns: Columns::ALL,
        })
    }
}

/// The children of a level's executions in one window, and the level they
/// form in turn.
pub struct Children {
    pub by_parent: HashMap<String, Vec<Row>>,
    pub level: Arc<Level>,
}

/// Executions looked up by id (parents, roots), and the level they form.
pub struct Related {
    pub by_id: HashMap<String, Row>,
    pub level: Arc<Level>,
}

/// One window's children of a level, loaded (or refused) once.
type ChildrenCell = Arc<OnceCell<GqlResult<Arc<Children>>>>;

pub struct Level {
    rows: Vec<Row>,
    /// One load per window asked of this level.
    /// A refused load (over budget) is kept too: the level's other fields
    /// get the same error instead of each trying again.
    children: Mutex<HashMap<Window, ChildrenCell>>,
    parents: OnceCell<Related>,
    roots: OnceCell<Related>,
    child_counts: OnceCell<HashMap<String, i64>>,
    claims: OnceCell<HashMap<String, store::Claim>>,
    recovery: OnceCell<HashMap<String, Vec<store::Recovery>>>,
}

impl Level {
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Arc<Level> {
        Arc::new(Level {
            rows: rows.into_iter().cloned().collect(),
            children: Default::default(),
            parents: OnceCell::new(),
            roots: OnceCell::new(),
            child_counts: OnceCell::new(),
            claims: OnceCell::new(),
            recovery: OnceCell::new(),
        })
    }

    /// The number of executions in this level.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn ids(&self) -> Vec<String> {
        self.rows.iter().map(|row| row.id.clone()).collect()
    }

    fn children_cell(&self, window: &Window) -> GqlResult<ChildrenCell> {
        let mut cells = self
            .children
            .lock()
            .map_err(|_| internal(&"children cache poisoned"))?;
        Ok(cells.entry(window.clone()).or_default().clone())
    }

    /// The children of every execution of this level in `window`.
    pub async fn children(&self, loaders: &Loaders, window: &Window) -> GqlResult<Arc<Children>> {
        let cell = self.children_cell(window)?;
        let children = cell
            .get_or_init(|| async {
                // Alone in the request while it loads: see `ChildrenLoader`.
                let _alone = RowBudget::alone(loaders.budget.as_ref()).await;
                let keys = self.rows.iter().map(|row| ChildKey {
                    parent: row.id.clone(),
                    window: window.clone(),
                });
                let by_parent: HashMap<String, Vec<Row>> = loaders
                    .children
                    .load_many(keys)
                    .await?
                    .into_iter()
                    .map(|(key, rows)| (key.parent, rows))
                    .collect();
                let level = Level::of(by_parent.values().flatten());
                Ok(Arc::new(Children { by_parent, level }))
            })
            .await;
        children.clone()
    }

    /// The number of direct children of every execution of this level.
    pub async fn child_counts(&self, loaders: &Loaders) -> GqlResult<&HashMap<String, i64>> {
        self.per_level(&self.child_counts, async |ids| {
            loaders
                .store
                .reads()
                .count_direct_children(&ids, &loaders.scope)
                .await
        })
        .await
    }

    /// `id`'s number of children, once `child_counts` has loaded them.
    pub fn loaded_child_count(&self, id: &str) -> i32 {
        let counts = self.child_counts.get();
        let count = counts.and_then(|c| c.get(id)).copied().unwrap_or(0);
        i32::try_from(count).unwrap_or(i32::MAX)
    }

    pub async fn claims(&self, loaders: &Loaders) -> GqlResult<&HashMap<String, store::Claim>> {
        self.per_level(&self.claims, async |ids| {
            loaders.store.reads().claims_for(&ids, &loaders.scope).await
        })
        .await
    }

    pub async fn recovery_history(
        &self,
        loaders: &Loaders,
    ) -> GqlResult<&HashMap<String, Vec<store::Recovery>>> {
        self.per_level(&self.recovery, async |ids| {
            loaders
                .store
                .reads()
                .recovery_history_for(&ids, &loaders.scope)
                .await
        })
        .await
    }

    /// `cell`, loaded once by `load` with the ids of the whole level.
    async fn per_level<'a, V>(
        &self,
        cell: &'a OnceCell<V>,
        load: impl AsyncFnOnce(Vec<String>) -> StoreResult<V>,
    ) -> GqlResult<&'a V> {
        cell.get_or_try_init(|| async { load(self.ids()).await.gql() })
            .await
    }

    /// The parents of this level's executions.
    pub async fn parents(&self, loaders: &Loaders) -> GqlResult<&Related> {
        Self::related(&self.parents, loaders, || {
            let ids: HashSet<&str> = self
                .rows
                .iter()
                .filter_map(|row| row.parent_execution_id.as_deref())
                .collect();
            ids.into_iter().map(str::to_owned).collect()
        })
        .await
    }

    /// The roots of this level's executions (those that are not roots).
    pub async fn roots(&self, loaders: &Loaders) -> GqlResult<&Related> {
        Self::related(&self.roots, loaders, || {
            let ids: HashSet<&str> = self
                .rows
                .iter()
                .filter(|row| row.root_execution_id != row.id)
                .map(|row| row.root_execution_id.as_str())
                .collect();
            ids.into_iter().map(str::to_owned).collect()
        })
        .await
    }

    async fn related<'a>(
        cell: &'a OnceCell<Related>,
        loaders: &Loaders,
        ids: impl FnOnce() -> Vec<String>,
    ) -> GqlResult<&'a Related> {
        cell.get_or_try_init(|| async {
            let rows = loaders
                .store
                .reads()
                .get_many(&ids(), &loaders.scope)
                .await
                .gql()?;
            let by_id: HashMap<String, Row> = rows
                .into_iter()
                .map(|row| (row.id.clone(), Arc::new(row)))
                .collect();
            let level = Level::of(by_id.values());
            Ok(Related { by_id, level })
        })
        .await
    }
}
