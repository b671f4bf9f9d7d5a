//! Trees, and the children of a level: what nested queries are made of.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::FromQueryResult;

use super::{row_limit, Reads};
use crate::store::db::{
    before_all, run, validate, Columns, Cursor, Scope, StoreError, StoreResult,
};
use entity::execution::Model as Execution;

/// Each row's level in a tree read (rows in the tree's order, the execution
/// asked for first): its depth below the first row's.
pub fn tree_levels<T: Borrow<Execution>>(rows: &[T]) -> Vec<i32> {
    let base = rows.first().map_or(0, |row| row.borrow().execution_depth);
    rows.iter()
        .map(|row| row.borrow().execution_depth - base)
        .collect()
}

/// Which children of each parent a batch returns.
#[derive(Clone, Debug)]
pub struct ChildWindow {
    /// At most this many children per parent (oldest first); all when None.
    pub per_parent: Option<i64>,
    /// Only children after this `(createdAt, id)`.
    pub after: Option<Cursor>,
    /// Refuse (`StoreError::TooManyRows`) rather than return more rows.
    pub max_rows: Option<i64>,
    /// The columns to read (`Columns::ALL` by default).
    pub columns: Columns,
}

impl Default for ChildWindow {
    fn default() -> Self {
        Self {
            per_parent: None,
            after: None,
            max_rows: None,
            columns: Columns::ALL,
        }
    }
}

#[derive(FromQueryResult)]
struct ChildCount {
    id: String,
    total: i64,
}

/// `rows`, refused when there are more than `max_rows` (the statement read
/// at most one more).
fn within<T>(rows: Vec<T>, max_rows: Option<i64>) -> StoreResult<Vec<T>> {
    match max_rows {
        Some(max) if rows.len() as i64 > max => Err(StoreError::TooManyRows { limit: max }),
        _ => Ok(rows),
    }
}

impl Reads {
    /// `getExecutionTree`: the subtree rooted at any execution, by level,
    /// then createdAt, then id (empty when the execution is absent), as
    /// shared rows reading only `columns` (and the keys); refused
    /// (`StoreError::TooManyRows`) rather than reading more than
    /// `max_rows` rows into memory. A row's level is its depth minus the
    /// first row's (`tree_levels`).
    pub async fn get_execution_tree(
        &self,
        execution_id: &str,
        max_rows: Option<i64>,
        columns: Columns,
        scope: &Scope,
    ) -> StoreResult<Vec<Arc<Execution>>> {
        validate::id("executionId", execution_id)?;
        let tree = self.db.stmt(
            &run::projected(self.db.sql().tree, columns),
            [
                execution_id.to_owned().into(),
                scope.param(),
                row_limit(max_rows).into(),
            ],
        );
        within(self.db.read_executions(tree).await?, max_rows)
    }

    /// `batchGetDirectChildren` within a window: the direct children of
    /// every given parent, oldest first, in ONE statement whatever the
    /// number of parents; at most `per_parent` children of each after the
    /// cursor, and an error rather than more than `max_rows` rows in all
    /// (checked by the statement's LIMIT, so no more than `max_rows + 1`
    /// rows are ever read into memory). Parents without children map to an
    /// empty list. Each row is in an `Arc`: a level's rows are shared, never
    /// moved once decoded.
    pub async fn batch_get_direct_children(
        &self,
        parent_ids: &[String],
        window: &ChildWindow,
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Arc<Execution>>>> {
        let mut children: HashMap<String, Vec<Arc<Execution>>> = parent_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        if parent_ids.is_empty() {
            return Ok(children);
        }
        let (after_at, after_id) = match &window.after {
            Some(after) => (after.created_at, after.id.clone()),
            None => (before_all(), String::new()),
        };
        let load = self.db.stmt(
            &run::projected(self.db.sql().children.of(scope.owner()), window.columns),
            [
                run::json_list(parent_ids).into(),
                scope.param(),
                after_at.into(),
                after_id.into(),
                window.per_parent.unwrap_or(i64::MAX).into(),
                row_limit(window.max_rows).into(),
            ],
        );
        let rows: Vec<Arc<Execution>> =
            within(self.db.read_executions(load).await?, window.max_rows)?;
        for child in rows {
            let parent = child.parent_execution_id.as_deref();
            if let Some(list) = parent.and_then(|parent| children.get_mut(parent)) {
                list.push(child);
            }
        }
        Ok(children)
    }

    /// Number of direct children per parent, in one statement.
    pub async fn count_direct_children(
        &self,
        parent_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, i64>> {
        let mut counts: HashMap<String, i64> =
            parent_ids.iter().map(|id| (id.clone(), 0)).collect();
        if parent_ids.is_empty() {
            return Ok(counts);
        }
        let count = self.db.stmt(
            self.db.sql().child_counts.of(scope.owner()),
            [run::json_list(parent_ids).into(), scope.param()],
        );
        for row in self.db.read_models::<ChildCount>(count).await? {
            counts.insert(row.id, row.total);
        }
        Ok(counts)
    }
}
