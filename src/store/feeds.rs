//! Read models over many executions: feeds (keyset pages), trees, batched
//! children for the DataLoaders, and statistics.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DbBackend, FromQueryResult};

use super::cursor::Cursor;
use super::rows::Columns;
use super::sql::{json_keys, json_list, PerKey, Sql};
use super::{validate, Execution, ExecutionStatus, ExecutionStore, Scope, StoreError, StoreResult};

/// Which roots of a flow `get_root_executions_filtered` lists.
#[derive(Clone, Debug, Default)]
pub struct RootFilter {
    /// Only roots in one of these statuses (not empty).
    pub statuses: Option<Vec<ExecutionStatus>>,
    /// Only roots created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Only roots created before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

/// One page of a newest-first feed.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// A page from rows read with `LIMIT first + 1`: the extra row only
    /// tells that there is a next page.
    pub(crate) fn cut(mut items: Vec<T>, first: i64, after_cursor: bool) -> Self {
        let has_next_page = items.len() as i64 > first;
        items.truncate(first as usize);
        Page {
            items,
            has_next_page,
            has_previous_page: after_cursor,
        }
    }

    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RootExecution {
    pub execution: Execution,
    /// Deepest depth below the root (0 when it has no descendants).
    pub levels: i64,
    /// Number of descendants, the root excluded.
    pub total_nested: i64,
}

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

#[derive(Clone, Debug)]
pub struct TreeNode {
    /// 0 for the execution the tree was asked for.
    pub level: i32,
    pub execution: Execution,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionStats {
    pub total: i64,
    pub created: i64,
    pub running: i64,
    pub paused: i64,
    pub completed: i64,
    pub failed: i64,
    pub stopped: i64,
    pub max_depth: i64,
    pub first_created_at: Option<DateTime<Utc>>,
    pub last_completed_at: Option<DateTime<Utc>>,
    /// completed ÷ minutes between first createdAt and last completedAt.
    pub completed_per_minute: Option<f64>,
}

#[derive(FromQueryResult)]
struct StatsRow {
    total: i64,
    created: Option<i64>,
    running: Option<i64>,
    paused: Option<i64>,
    completed: Option<i64>,
    failed: Option<i64>,
    stopped: Option<i64>,
    max_depth: Option<i64>,
    first_created_at: Option<DateTime<Utc>>,
    last_completed_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct TreeShape {
    id: String,
    levels: Option<i64>,
    total: i64,
}

#[derive(FromQueryResult)]
struct ChildCount {
    id: String,
    total: i64,
}

impl ExecutionStore {
    /// One newest-first keyset page of the executions matching
    /// `conditions` (whose parameters `sql` holds): `(created_at, id) <
    /// after`, `first + 1` rows to learn whether another page follows. No
    /// OFFSET, so every page costs the same. With `statuses`, one index range
    /// per status (see `newest_first`).
    async fn keyset_page(
        &self,
        mut sql: Sql,
        mut conditions: String,
        statuses: Option<&[ExecutionStatus]>,
        first: Option<i64>,
        after: Option<&str>,
    ) -> StoreResult<Page<Execution>> {
        let first = validate::page_size(first)?;
        let after = Cursor::parse_opt(after)?;
        if let Some(cursor) = &after {
            let at = sql.bind(cursor.created_at);
            let id = sql.bind(cursor.id.clone());
            conditions.push_str(&format!(" AND (created_at, id) < ({at}, {id})"));
        }
        let text = newest_first(&mut sql, &conditions, statuses, first + 1)?;
        sql.push(&text);
        let items = Self::query_executions(&self.reads, sql).await?;
        Ok(Page::cut(items, first, after.is_some()))
    }

    /// `getRootExecutions`: depth-0 executions of a flow, newest first, each
    /// with the depth and size of its tree (one aggregate for the whole page).
    pub async fn get_root_executions(
        &self,
        flow_id: &str,
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<RootExecution>> {
        self.get_root_executions_filtered(flow_id, first, after, &RootFilter::default(), scope)
            .await
    }

    /// `get_root_executions`, only the roots in some statuses and/or created
    /// in a window. Each status asked for is one range of the index
    /// `(flow_id, status, created_at, id)` of roots, read newest first and
    /// cut at the page size; the ranges are merged. So a page costs about
    /// `first` index entries per status, however many roots the flow holds.
    pub async fn get_root_executions_filtered(
        &self,
        flow_id: &str,
        first: Option<i64>,
        after: Option<&str>,
        filter: &RootFilter,
        scope: &Scope,
    ) -> StoreResult<Page<RootExecution>> {
        validate::id("flowId", flow_id)?;
        if let (Some(from), Some(before)) = (filter.created_from, filter.created_before) {
            if from >= before {
                return Err(StoreError::invalid(
                    "createdBefore",
                    "must be later than createdFrom",
                ));
            }
        }
        let mut sql = Sql::new("");
        let flow = sql.bind(flow_id.to_owned());
        let mut conditions = format!("flow_id = {flow} AND execution_depth = 0");
        conditions.push_str(&sql.owner_filter("owner_id", scope));
        if let Some(from) = filter.created_from {
            conditions.push_str(&format!(" AND created_at >= {}", sql.bind(from)));
        }
        if let Some(before) = filter.created_before {
            conditions.push_str(&format!(" AND created_at < {}", sql.bind(before)));
        }
        // Roots are indexed by flow, status and time (not by flow and time
        // alone), so newest first over all of a flow's roots is the merge of
        // one range per status. One owner's roots are one range of its own
        // index by flow and time (no status in it): read as they are.
        let statuses = match (filter.statuses.as_deref(), scope.owner()) {
            (None, None) => Some(&ExecutionStatus::ALL[..]),
            (statuses, _) => statuses,
        };
        let page = self
            .keyset_page(sql, conditions, statuses, first, after)
            .await?;
        if page.items.is_empty() {
            return Ok(page.map(|execution| RootExecution {
                execution,
                levels: 0,
                total_nested: 0,
            }));
        }
        let ids: Vec<String> = page.items.iter().map(|e| e.id.clone()).collect();
        // Two index probes per root (root_execution_id), nothing per table row.
        let mut sql = Sql::new("SELECT k.value AS id, ");
        let filter = sql.owner_filter("x.owner_id", scope);
        let keys = sql.bind(json_list(&ids));
        sql.push(&format!(
            "(SELECT CAST(MAX(x.execution_depth) AS BIGINT) FROM executions x \
             WHERE x.root_execution_id = k.value{filter}) AS levels, \
             (SELECT CAST(COUNT(*) AS BIGINT) FROM executions x \
             WHERE x.root_execution_id = k.value{filter}) AS total FROM {}",
            json_keys(self.backend(), &keys)
        ));
        let shapes: HashMap<String, TreeShape> =
            TreeShape::find_by_statement(sql.build(self.backend()))
                .all(&self.reads)
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

    /// `getExecutionTree`: the subtree rooted at any execution, by level,
    /// then createdAt, then id. Empty when the execution is absent.
    pub async fn get_execution_tree(
        &self,
        execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<Vec<TreeNode>> {
        self.get_execution_tree_within(execution_id, None, scope)
            .await
    }

    /// `get_execution_tree`, refused (`StoreError::TooManyRows`) rather than
    /// reading more than `max_rows` rows into memory.
    ///
    /// A root's tree is read as one range of the index of runs (by root,
    /// status and time; its prefix). Below a root,
    /// the recursion carries whole rows and finds each node's children by one
    /// probe of the parent index (PostgreSQL: a fenced LATERAL subquery;
    /// SQLite: a CROSS JOIN). Either way it reads the subtree and nothing else.
    pub async fn get_execution_tree_within(
        &self,
        execution_id: &str,
        max_rows: Option<i64>,
        scope: &Scope,
    ) -> StoreResult<Vec<TreeNode>> {
        let rows: Vec<Execution> = self
            .tree_rows(execution_id, max_rows, Columns::ALL, scope)
            .await?;
        let levels = tree_levels(&rows);
        Ok(rows
            .into_iter()
            .zip(levels)
            .map(|(execution, level)| TreeNode { level, execution })
            .collect())
    }

    /// `get_execution_tree_within` as shared rows (in the tree's order; a
    /// node's level is its depth minus the first row's), reading only
    /// `columns` (and the keys).
    pub async fn get_execution_tree_shared(
        &self,
        execution_id: &str,
        max_rows: Option<i64>,
        columns: Columns,
        scope: &Scope,
    ) -> StoreResult<Vec<Arc<Execution>>> {
        self.tree_rows(execution_id, max_rows, columns, scope).await
    }

    async fn tree_rows<T: From<Execution>>(
        &self,
        execution_id: &str,
        max_rows: Option<i64>,
        columns: Columns,
        scope: &Scope,
    ) -> StoreResult<Vec<T>> {
        validate::id("executionId", execution_id)?;
        let mut sql =
            Sql::new("WITH RECURSIVE subtree AS (SELECT x.* FROM executions x WHERE x.id = ");
        let p = sql.bind(execution_id.to_owned());
        // A root's tree is one range of the index of runs; only an inner
        // node's subtree needs the recursion.
        sql.push(&p)
            .push(" AND x.parent_execution_id IS NOT NULL")
            .scope("x.owner_id", scope);
        let filter = sql.owner_filter("c.owner_id", scope);
        match self.backend() {
            DbBackend::Postgres => sql.push(&format!(
                " UNION ALL SELECT c.* FROM subtree s CROSS JOIN LATERAL \
                 (SELECT * FROM executions c WHERE c.parent_execution_id = s.id{filter} OFFSET 0) c)"
            )),
            _ => sql.push(&format!(
                " UNION ALL SELECT c.* FROM subtree s CROSS JOIN executions c \
                 WHERE c.parent_execution_id = s.id{filter})"
            )),
        };
        let root_filter = sql.owner_filter("x.owner_id", scope);
        let columns = columns.select_list("t");
        sql.push(&format!(
            " SELECT {columns} FROM (SELECT * FROM subtree UNION ALL SELECT x.* FROM executions x \
             WHERE x.root_execution_id = {p}{root_filter} AND EXISTS (SELECT 1 FROM executions r \
             WHERE r.id = {p} AND r.parent_execution_id IS NULL)) t \
             ORDER BY t.execution_depth, t.created_at, t.id"
        ));
        Self::query_executions_within(&self.reads, sql, max_rows).await
    }

    /// `getChildFeed`: every descendant of a root, newest first; with
    /// `statuses`, only those in one of them (one index range each).
    pub async fn get_child_feed(
        &self,
        root_execution_id: &str,
        statuses: Option<&[ExecutionStatus]>,
        first: Option<i64>,
        after: Option<&str>,
        scope: &Scope,
    ) -> StoreResult<Page<Execution>> {
        validate::id("rootExecutionId", root_execution_id)?;
        let mut sql = Sql::new("");
        let p = sql.bind(root_execution_id.to_owned());
        let mut conditions = format!("root_execution_id = {p} AND id <> {p}");
        conditions.push_str(&sql.owner_filter("owner_id", scope));
        // A run's executions are indexed by status then time, not by time
        // alone (one index entry less per write), so newest first over the
        // whole run is the merge of one range per status.
        let statuses = statuses.unwrap_or(&ExecutionStatus::ALL);
        self.keyset_page(sql, conditions, Some(statuses), first, after)
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
        let mut sql = Sql::new("");
        let p = sql.bind(parent_execution_id.to_owned());
        let mut conditions = format!("parent_execution_id = {p}");
        conditions.push_str(&sql.owner_filter("owner_id", scope));
        self.keyset_page(sql, conditions, statuses, first, after)
            .await
    }

    /// `batchGetDirectChildren`: the direct children of every given parent,
    /// oldest first, in ONE statement whatever the number of parents.
    /// Parents without children map to an empty list.
    pub async fn batch_get_direct_children(
        &self,
        parent_ids: &[String],
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Execution>>> {
        self.batch_get_direct_children_in(parent_ids, &ChildWindow::default(), scope)
            .await
    }

    /// `batch_get_direct_children` within a window: at most `per_parent`
    /// children of each parent after the cursor, and an error rather than
    /// more than `max_rows` rows in all (checked by the statement's LIMIT,
    /// so no more than `max_rows + 1` rows are ever read into memory).
    pub async fn batch_get_direct_children_in(
        &self,
        parent_ids: &[String],
        window: &ChildWindow,
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Execution>>> {
        self.batch_get_direct_children_as(parent_ids, window, scope)
            .await
    }

    /// `batch_get_direct_children_in` with each row in an `Arc`, for a
    /// level whose rows are shared (the GraphQL levels): the rows are
    /// never moved once decoded.
    pub async fn batch_get_direct_children_shared(
        &self,
        parent_ids: &[String],
        window: &ChildWindow,
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<Arc<Execution>>>> {
        self.batch_get_direct_children_as(parent_ids, window, scope)
            .await
    }

    async fn batch_get_direct_children_as<T>(
        &self,
        parent_ids: &[String],
        window: &ChildWindow,
        scope: &Scope,
    ) -> StoreResult<HashMap<String, Vec<T>>>
    where
        T: From<Execution> + Borrow<Execution>,
    {
        let mut children: HashMap<String, Vec<T>> = parent_ids
            .iter()
            .map(|id| (id.clone(), Vec::new()))
            .collect();
        if parent_ids.is_empty() {
            return Ok(children);
        }
        let mut sql = Sql::new(&format!("SELECT {}", window.columns.select_list("r")));
        let mut filter = sql.owner_filter("x.owner_id", scope);
        if let Some(after) = &window.after {
            let at = sql.bind(after.created_at);
            let id = sql.bind(after.id.clone());
            filter.push_str(&format!(" AND (x.created_at, x.id) > ({at}, {id})"));
        }
        let limit = window.per_parent.map(|n| sql.bind(n));
        sql.per_key(
            self.backend(),
            parent_ids,
            PerKey {
                table: "executions",
                column: "parent_execution_id",
                filter,
                order: "x.created_at, x.id",
                limit,
            },
        );
        sql.push(" ORDER BY r.created_at, r.id");
        let rows: Vec<T> = Self::query_executions_within(&self.reads, sql, window.max_rows).await?;
        for child in rows {
            let parent = child.borrow().parent_execution_id.as_deref();
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
        // One index probe per parent: the count reads its children's index
        // entries only.
        let mut sql = Sql::new("SELECT k.value AS id, ");
        let filter = sql.owner_filter("x.owner_id", scope);
        let keys = sql.bind(json_list(parent_ids));
        sql.push(&format!(
            "(SELECT CAST(COUNT(*) AS BIGINT) FROM executions x \
             WHERE x.parent_execution_id = k.value{filter}) AS total FROM {}",
            json_keys(self.backend(), &keys)
        ));
        for row in ChildCount::find_by_statement(sql.build(self.backend()))
            .all(&self.reads)
            .await?
        {
            counts.insert(row.id, row.total);
        }
        Ok(counts)
    }

    /// `getExecutionStats` over a root's descendants (root excluded), as one
    /// aggregate statement.
    pub async fn get_execution_stats(
        &self,
        root_execution_id: &str,
        scope: &Scope,
    ) -> StoreResult<ExecutionStats> {
        validate::id("rootExecutionId", root_execution_id)?;
        let count = |status: ExecutionStatus| {
            format!(
                "CAST(SUM(CASE WHEN status = '{0}' THEN 1 ELSE 0 END) AS BIGINT) AS {0}",
                status.as_str()
            )
        };
        let counts = ExecutionStatus::ALL.map(count).join(", ");
        let mut sql = Sql::new(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total, {counts}, \
             CAST(MAX(execution_depth) AS BIGINT) AS max_depth, \
             MIN(created_at) AS first_created_at, MAX(completed_at) AS last_completed_at \
             FROM executions WHERE root_execution_id = "
        ));
        let p = sql.bind(root_execution_id.to_owned());
        sql.push(&format!("{p} AND id <> {p}"))
            .scope("owner_id", scope);
        let row = StatsRow::find_by_statement(sql.build(self.backend()))
            .one(&self.reads)
            .await?;
        let Some(row) = row else {
            return Ok(ExecutionStats::default());
        };
        let completed = row.completed.unwrap_or(0);
        let completed_per_minute = match (row.first_created_at, row.last_completed_at) {
            (Some(first), Some(last)) if last > first => {
                let minutes = (last - first).num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6;
                Some(completed as f64 / minutes)
            }
            _ => None,
        };
        Ok(ExecutionStats {
            total: row.total,
            created: row.created.unwrap_or(0),
            running: row.running.unwrap_or(0),
            paused: row.paused.unwrap_or(0),
            completed,
            failed: row.failed.unwrap_or(0),
            stopped: row.stopped.unwrap_or(0),
            max_depth: row.max_depth.unwrap_or(0),
            first_created_at: row.first_created_at,
            last_completed_at: row.last_completed_at,
            completed_per_minute,
        })
    }
}

/// The newest `limit` executions matching `conditions`, newest first. With
/// `statuses`, each status is its own range of an index that leads with the
/// conditions' column and the status, read newest first and cut at `limit`;
/// the ranges are merged. So a page costs about `limit` index entries per
/// status, however many executions the other statuses hold.
fn newest_first(
    sql: &mut Sql,
    conditions: &str,
    statuses: Option<&[ExecutionStatus]>,
    limit: i64,
) -> StoreResult<String> {
    let limit = sql.bind(limit);
    let newest = "ORDER BY created_at DESC, id DESC";
    let Some(statuses) = statuses else {
        return Ok(format!(
            "SELECT * FROM executions WHERE {conditions} {newest} LIMIT {limit}"
        ));
    };
    if statuses.is_empty() {
        return Err(StoreError::invalid(
            "status",
            "name at least one status, or leave the filter out",
        ));
    }
    let mut statuses = statuses.to_vec();
    statuses.sort_by_key(|s| s.as_str());
    statuses.dedup();
    let branches: Vec<String> = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let status = sql.bind(status.as_str());
            format!(
                "SELECT * FROM (SELECT * FROM executions WHERE {conditions} \
                 AND status = {status} {newest} LIMIT {limit}) s{i}"
            )
        })
        .collect();
    Ok(format!(
        "SELECT * FROM ({}) u {newest} LIMIT {limit}",
        branches.join(" UNION ALL ")
    ))
}
