//! Small builders shared by the store tests.

use chrono::{DateTime, Utc};
use entity::execution;
use std::collections::HashMap;
use std::sync::Arc;

use execstore::store::{
    tree_levels, ChildWindow, Columns, CreateExecution, Execution, ExecutionStatus, ExecutionStore,
    Finish, Page, RootExecution, RootFilter, Scope, StoreResult,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

pub const OWNER: &str = "owner-1";

pub fn input(id: &str, parent: Option<&str>) -> CreateExecution {
    CreateExecution {
        id: Some(id.to_owned()),
        flow_id: "flow-1".into(),
        owner_id: OWNER.into(),
        parent_execution_id: parent.map(str::to_owned),
        ..Default::default()
    }
}

/// A finish of `id` by `worker` to `status`, nothing else set.
pub fn finish(id: &str, worker: &str, status: ExecutionStatus) -> Finish {
    Finish {
        execution_id: id.into(),
        worker_id: worker.into(),
        status,
        error_message: None,
        error_node_id: None,
        failure_reason: None,
        retry_in_ms: None,
    }
}

/// Execution `id` as stored (it must exist).
pub async fn stored(store: &ExecutionStore, id: &str) -> Execution {
    store
        .reads()
        .get(id, &Scope::All)
        .await
        .expect("read execution")
        .unwrap_or_else(|| panic!("no execution {id}"))
}

pub async fn create(store: &ExecutionStore, id: &str, parent: Option<&str>) -> Execution {
    store
        .runs()
        .create(input(id, parent), &Scope::All)
        .await
        .expect("create execution")
}

pub async fn create_with_status(
    store: &ExecutionStore,
    id: &str,
    parent: Option<&str>,
    status: ExecutionStatus,
) -> Execution {
    let mut i = input(id, parent);
    i.status = Some(status);
    store
        .runs()
        .create(i, &Scope::All)
        .await
        .expect("create execution")
}

/// Test-only time travel: rewrites created_at of some rows.
pub async fn set_created_at(db: &DatabaseConnection, ids: &[String], at: DateTime<Utc>) {
    execution::Entity::update_many()
        .col_expr(execution::Column::CreatedAt, Expr::value(at))
        .filter(execution::Column::Id.is_in(ids.iter().cloned()))
        .exec(db)
        .await
        .expect("set created_at");
}

pub fn ts(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_760_000_000_000_000 + micros).expect("timestamp")
}

/// Test-only time travel: the claim's lease ran out long ago.
pub async fn expire_lease(db: &DatabaseConnection, execution_id: &str) {
    entity::execution_claim::Entity::update_many()
        .col_expr(
            entity::execution_claim::Column::ExpiresAt,
            Expr::value(ts(0)),
        )
        .filter(entity::execution_claim::Column::ExecutionId.eq(execution_id))
        .exec(db)
        .await
        .expect("expire lease");
    // The execution row mirrors the lease (the work queue reads it there).
    execution::Entity::update_many()
        .col_expr(execution::Column::LeaseExpiresAt, Expr::value(ts(0)))
        .filter(execution::Column::Id.eq(execution_id))
        .filter(execution::Column::LeaseExpiresAt.is_not_null())
        .exec(db)
        .await
        .expect("expire the execution's lease");
}

/// A node of `tree`: its level below the execution asked for.
pub struct TreeNode {
    pub level: i32,
    pub execution: Execution,
}

/// The seed's `getExecutionTree`: the subtree at `id`, whole rows, by level.
pub async fn tree(store: &ExecutionStore, id: &str, scope: &Scope) -> StoreResult<Vec<TreeNode>> {
    let rows = store
        .reads()
        .get_execution_tree(id, None, Columns::ALL, scope)
        .await?;
    let levels = tree_levels(&rows);
    Ok(rows
        .into_iter()
        .zip(levels)
        .map(|(row, level)| TreeNode {
            level,
            execution: Arc::unwrap_or_clone(row),
        })
        .collect())
}

/// The seed's `getRootExecutions`, without filters.
pub async fn roots(
    store: &ExecutionStore,
    flow: &str,
    first: Option<i64>,
    after: Option<&str>,
    scope: &Scope,
) -> StoreResult<Page<RootExecution>> {
    store
        .reads()
        .get_root_executions(flow, first, after, &RootFilter::default(), scope)
        .await
}

/// The seed's `batchGetDirectChildren`: every child of each parent.
pub async fn children(
    store: &ExecutionStore,
    parents: &[String],
    scope: &Scope,
) -> StoreResult<HashMap<String, Vec<Execution>>> {
    let children = store
        .reads()
        .batch_get_direct_children(parents, &ChildWindow::default(), scope)
        .await?;
    Ok(children
        .into_iter()
        .map(|(parent, rows)| (parent, rows.into_iter().map(Arc::unwrap_or_clone).collect()))
        .collect())
}

/// The seed's `getChildExecutions`: the direct children, oldest first.
pub async fn child_executions(
    store: &ExecutionStore,
    parent: &str,
    scope: &Scope,
) -> StoreResult<Vec<Execution>> {
    let mut children = children(store, &[parent.to_owned()], scope).await?;
    Ok(children.remove(parent).unwrap_or_default())
}
