//! Feeds: newest-first keyset pages of a flow's runs, a run's executions,
//! a parent's children. No OFFSET: every page costs the same.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Value};

use super::{time_bounds, Page, Reads};
use crate::store::db::{after_all, run, validate, Cursor, Scope, StoreError, StoreResult};
use entity::execution::Model as Execution;
use entity::ExecutionStatus;

/// Which roots of a flow `get_root_executions` lists.
#[derive(Clone, Debug, Default)]
pub struct RootFilter {
    /// Only roots in one of these statuses (not empty).
    pub statuses: Option<Vec<ExecutionStatus>>,
    /// Only roots created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only roots created before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct RootExecution {
    pub execution: Execution,
    /// Deepest depth below the root (0 when it has no descendants).
    pub levels: i64,
    /// Number of descendants, the root excluded.
    pub total_nested: i64,
}

#[derive(FromQueryResult)]
struct TreeShape {
    id: String,
    levels: Option<i64>,
    total: i64,
}

/// A page's first `first + 1` rows after the cursor: the parameters every
/// feed takes after its key and owner (the cursor, open when absent; the
/// limit).
fn cursor_and_limit(after: Option<&Cursor>, first: i64) -> [Value; 3] {
    match after {
        Some(cursor) => [
            cursor.created_at.into(),
            cursor.id.clone().into(),
            (first + 1).into(),
        ],
        None => [after_all().into(), String::new().into(), (first + 1).into()],
    }
}

/// One parameter per status, in the order of `ExecutionStatus::ALL`: the
/// status where it is asked for, null where not (the statements' status
/// slots: a null slot matches nothing).
fn status_slots(statuses: &[ExecutionStatus]) -> StoreResult<[Value; 6]> {
    if statuses.is_empty() {
        return Err(StoreError::invalid(
            "status",
            "name at least one status, or leave the filter out",
        ));
    }
    Ok(ExecutionStatus::ALL.map(|status| {
        statuses
            .contains(&status)
            .then(|| status.as_str().to_owned())
            .into()
    }))
}

impl Reads {
    /// `getRootExecutions`: depth-0 executions of a flow, newest first, each
    /// with the depth and size of its tree (one aggregate for the whole
    /// page); only the roots in some statuses and/or created in a window
    /// when `filter` says so. Each status asked for is one range of the
    /// index of roots by flow, status and time, read newest first and cut
    /// at the page size; the ranges are merged. So a page costs about
    /// `first` index entries per status, however many roots the flow holds.
    /// One owner's roots in every status are one range of that owner's own
    /// index by flow and time.
    pub async fn get_root_executions(
        &self,
        flow_id: &str,
        first: Option<i64>,
        after: Option<&str>,
        filter: &RootFilter,
        scope: &Scope,
    ) -> StoreResult<Page<RootExecution>> {
        validate::id("flowId", flow_id)?;
        let (from, before) = time_bounds(filter.created_from, filter.created_before);
        if from >= before {
            return Err(StoreError::invalid(
                "createdBefore",
                "must be later than createdFrom",
            ));
        }
        let first = validate::page_size(first)?;
        let after = Cursor::parse_opt(after)?;
        let sql = self.db.sql();
        let (text, statuses) = match (filter.statuses.as_deref(), scope.owner()) {
            (None, Some(_)) => (sql.owner_roots, ExecutionStatus::ALL.to_vec()),
            (statuses, _) => (
                sql.roots_by_status,
                statuses.unwrap_or(&ExecutionStatus::ALL).to_vec(),
            ),
        };
        let mut values = vec![
            flow_id.to_owned().into(),
            scope.param(),
            from.into(),
            before.into(),
        ];
        values.extend(cursor_and_limit(after.as_ref(), first));
        values.extend(status_slots(&statuses)?);
        let rows = self.db.read_executions(self.db.stmt(text, values)).await?;
        let page = Page::cut(rows, first, after.is_some());
        if page.items.is_empty() {
            return Ok(page.map(|execution| RootExecution {
                execution,
                levels: 0,
                total_nested: 0,
            }));
        }
        let ids: Vec<String> = page.items.iter().map(|e| e.id.clone()).collect();
        let shapes = self.db.stmt(
            sql.tree_shapes,
            [run::json_list(&ids).into(), scope.param()],
        );
        let shapes: HashMap<String, TreeShape> = self
            .db
            .read_models::<TreeShape>(shapes)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        Ok(page.map(|execution| {
            let shape = shapes.get(&execution.id);
            RootExecution {
                levels: shape.and_then(|s| s.levels).unwrap_or(0),
                total_nested: shape.map(|s| s.total - 1).unwrap_or(0).max(0),
                execution,
            }
        }))
    }

    /// `getChildFeed`: every descendant of a root, newest first; with
    /// `statuses`, only those in one of them. A run is indexed by status
    /// then time, so newest first over the whole run is the merge of one
    /// range per status.
    pub async fn get_child_feed(
        &self,
        root_execution_id: &str,
        statuses: Option<&[ExecutionStatus]>,
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<Execution>> {
        validate::id("rootExecutionId", root_execution_id)?;
        let statuses = statuses.unwrap_or(&ExecutionStatus::ALL);
        self.feed(
            self.db.sql().child_feed,
            root_execution_id,
            statuses,
            first,
            after,
            scope,
        )
        .await
    }

    /// `getDirectChildFeed`: direct children of any execution, newest
    /// first; with `statuses`, only those in one of them.
    pub async fn get_direct_child_feed(
        &self,
        parent_execution_id: &str,
        statuses: Option<&[ExecutionStatus]>,
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<Execution>> {
        validate::id("parentExecutionId", parent_execution_id)?;
        let sql = self.db.sql();
        let (text, statuses) = match statuses {
            Some(statuses) => (sql.direct_child_feed_by_status, statuses),
            None => (sql.direct_child_feed, &ExecutionStatus::ALL[..]),
        };
        self.feed(text, parent_execution_id, statuses, first, after, scope)
            .await
    }

    /// One page of a feed whose statement takes (key, owner, cursor, limit,
    /// status slots).
    async fn feed(
        &self,
        text: &str,
        key: &str,
        statuses: &[ExecutionStatus],
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<Execution>> {
        let first = validate::page_size(first)?;
        let after = Cursor::parse_opt(after)?;
        let mut values = vec![key.to_owned().into(), scope.param()];
        values.extend(cursor_and_limit(after.as_ref(), first));
        values.extend(status_slots(statuses)?);
        let rows = self.db.read_executions(self.db.stmt(text, values)).await?;
        Ok(Page::cut(rows, first, after.is_some()))
    }
}
