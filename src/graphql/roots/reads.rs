//! The reads: executions, trees, feeds, flows, claims, statistics (the
//! store's `reads`).

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, OutputType, ID};
use chrono::{DateTime, Utc};

use crate::graphql::budget::RowBudget;
use crate::graphql::error::{GqlResult, OrGql};
use crate::graphql::fast_tree::{
    self, Answer, ExecutionAnswer, FastPath, Plan, RawAnswers, TreeAnswer,
};
use crate::graphql::types::loaders;
use crate::graphql::types::{
    Execution, ExecutionClaim, ExecutionRecovery, ExecutionStats, ExecutionStatus,
    ExecutionTreeNode, Flow, RootExecution,
};
use crate::graphql::{store, viewer};
use crate::store::{self as s, Cursor, RootFilter};

/// The page size when `first` is left out.
const DEFAULT_PAGE: i32 = s::limits::DEFAULT_PAGE as i32;

#[derive(Default)]
pub struct ReadsQuery;

/// A page as a Relay connection; cursors encode `(createdAt, id)`.
fn connection<N: OutputType>(
    has_previous_page: bool,
    has_next_page: bool,
    nodes: Vec<N>,
    key: impl Fn(&N) -> &s::Execution,
) -> Connection<String, N> {
    let mut conn = Connection::new(has_previous_page, has_next_page);
    conn.edges.extend(nodes.into_iter().map(|node| {
        let e = key(&node);
        let cursor = Cursor::new(e.created_at, e.id.clone()).encode();
        Edge::new(cursor, node)
    }));
    conn
}

/// Whether this request may take the fast path for plain trees.
fn fast_path(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<FastPath>().is_none_or(|f| f.0)
}

/// Counts rows a field loaded against the request's budget.
fn charge(ctx: &Context<'_>, rows: usize) -> GqlResult<()> {
    RowBudget::charge_in(ctx, rows).gql()
}

/// A feed's page as a connection, its rows charged to the request's budget.
async fn feed(
    ctx: &Context<'_>,
    page: impl std::future::Future<Output = s::StoreResult<s::Page<s::Execution>>>,
) -> GqlResult<Connection<String, Execution>> {
    let page = page.await.gql()?;
    charge(ctx, page.items.len())?;
    Ok(execution_connection(page))
}

fn store_statuses(status: Option<Vec<ExecutionStatus>>) -> Option<Vec<s::ExecutionStatus>> {
    status.map(|s| s.into_iter().map(Into::into).collect())
}

fn execution_connection(page: s::Page<s::Execution>) -> Connection<String, Execution> {
    let nodes = Execution::level(page.items);
    connection(
        page.has_previous_page,
        page.has_next_page,
        nodes,
        Execution::row,
    )
}

#[Object]
impl ReadsQuery {
    /// An execution by id; null when absent (or not yours).
    async fn execution(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<ExecutionAnswer>> {
        let scope = viewer(ctx)?.scope();
        let store = store(ctx)?;
        let Some(row) = store.reads().get(&id, &scope).await.gql()? else {
            return Ok(None);
        };
        charge(ctx, 1)?;
        if let Some(plan) = fast_path(ctx)
            .then(|| Plan::of_execution(&ctx.field()))
            .flatten()
        {
            let raw = ctx.data_opt::<RawAnswers>();
            let answer = fast_tree::execution(loaders(ctx)?, raw, row, &plan).await?;
            return Ok(Some(Answer::built(answer)));
        }
        Ok(Some(Answer::Generic(Execution::single(row))))
    }

    /// Depth-0 executions of a flow, newest first. Optionally only those in
    /// the given statuses (at least one) and/or created in a window
    /// (`createdFrom` inclusive, `createdBefore` exclusive); each filter is
    /// served by an index.
    // Each GraphQL argument is a parameter.
    #[allow(clippy::too_many_arguments)]
    async fn root_executions(
        &self,
        ctx: &Context<'_>,
        flow_id: ID,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
        status: Option<Vec<ExecutionStatus>>,
        created_from: Option<DateTime<Utc>>,
        created_before: Option<DateTime<Utc>>,
    ) -> GqlResult<Connection<String, RootExecution>> {
        let scope = viewer(ctx)?.scope();
        let filter = RootFilter {
            statuses: store_statuses(status),
            created_from,
            created_before,
        };
        let page = store(ctx)?
            .reads()
            .get_root_executions(
                &flow_id,
                first.map(i64::from),
                after.as_deref(),
                &filter,
                &scope,
            )
            .await
            .gql()?;
        charge(ctx, page.items.len())?;
        let (shapes, rows): (Vec<_>, Vec<_>) = page
            .items
            .into_iter()
            .map(|r| ((r.levels, r.total_nested), r.execution))
            .unzip();
        let nodes = Execution::level(rows)
            .into_iter()
            .zip(shapes)
            .map(|(execution, (levels, total_nested))| {
                RootExecution::new(execution, levels, total_nested)
            })
            .collect();
        Ok(connection(
            page.has_previous_page,
            page.has_next_page,
            nodes,
            |r| r.execution.row(),
        ))
    }

    /// The subtree rooted at any execution, by level, then createdAt, then id.
    async fn execution_tree(&self, ctx: &Context<'_>, execution_id: ID) -> GqlResult<TreeAnswer> {
        let scope = viewer(ctx)?.scope();
        let store = store(ctx)?;
        let budget = RowBudget::of(ctx);
        let plan = fast_path(ctx)
            .then(|| Plan::of_tree_node(&ctx.field()))
            .flatten();
        // The fast path reads the columns its selection writes.
        let columns = plan.as_ref().map_or(s::Columns::ALL, |p| p.columns());
        let rows = RowBudget::bounded(
            budget.as_ref(),
            async |max_rows| {
                store
                    .reads()
                    .get_execution_tree(&execution_id, max_rows, columns, &scope)
                    .await
            },
            |_| 1,
        )
        .await
        .gql()?;
        if let Some(plan) = plan {
            let raw = ctx.data_opt::<RawAnswers>();
            let answer = fast_tree::tree(loaders(ctx)?, raw, rows, &plan).await?;
            return Ok(Answer::built(answer));
        }
        let levels = s::tree_levels(&rows);
        Ok(Answer::Generic(
            Execution::level_shared(rows)
                .into_iter()
                .zip(levels)
                .map(|(execution, level)| ExecutionTreeNode {
                    id: ID(execution.row().id.clone()),
                    parent_id: execution.row().parent_execution_id.clone().map(ID),
                    level,
                    execution,
                })
                .collect(),
        ))
    }

    /// Every descendant of a root, newest first; with `status`, only those
    /// in one of the given statuses (at least one). Each status is one index
    /// range of the run: a page costs the same in a run of a million.
    async fn child_feed(
        &self,
        ctx: &Context<'_>,
        root_execution_id: ID,
        status: Option<Vec<ExecutionStatus>>,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, Execution>> {
        let scope = viewer(ctx)?.scope();
        let first = first.map(i64::from);
        let statuses = store_statuses(status);
        let page = store(ctx)?.reads().get_child_feed(
            &root_execution_id,
            statuses.as_deref(),
            first,
            after.as_deref(),
            &scope,
        );
        feed(ctx, page).await
    }

    /// Direct children of any execution, newest first; with `status`, only
    /// those in one of the given statuses.
    async fn direct_child_feed(
        &self,
        ctx: &Context<'_>,
        parent_execution_id: ID,
        status: Option<Vec<ExecutionStatus>>,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, Execution>> {
        let scope = viewer(ctx)?.scope();
        let first = first.map(i64::from);
        let statuses = store_statuses(status);
        let page = store(ctx)?.reads().get_direct_child_feed(
            &parent_execution_id,
            statuses.as_deref(),
            first,
            after.as_deref(),
            &scope,
        );
        feed(ctx, page).await
    }

    /// Every flow with at least one run (yours, for a user token), the
    /// newest last run first. Each flow costs two index probes, whatever
    /// its runs hold; no scan of the executions.
    async fn flows(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(DEFAULT_PAGE)")] first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Connection<String, Flow>> {
        let scope = viewer(ctx)?.scope();
        let page = store(ctx)?
            .reads()
            .get_flows(first.map(i64::from), after.as_deref(), &scope)
            .await
            .gql()?;
        charge(ctx, page.items.len())?;
        let cursors: Vec<String> = page.items.iter().map(|f| f.cursor().encode()).collect();
        let mut conn = Connection::new(page.has_previous_page, page.has_next_page);
        conn.edges.extend(
            Flow::page(page.items)
                .into_iter()
                .zip(cursors)
                .map(|(flow, cursor)| Edge::new(cursor, flow)),
        );
        Ok(conn)
    }

    /// Statistics over a root's descendants (the root excluded).
    async fn execution_stats(
        &self,
        ctx: &Context<'_>,
        root_execution_id: ID,
    ) -> GqlResult<ExecutionStats> {
        let scope = viewer(ctx)?.scope();
        Ok(store(ctx)?
            .reads()
            .get_execution_stats(&root_execution_id, &scope)
            .await
            .gql()?
            .into())
    }

    /// Live claims: active and not past their expiry.
    async fn active_claims(&self, ctx: &Context<'_>) -> GqlResult<Vec<ExecutionClaim>> {
        let scope = viewer(ctx)?.scope();
        let claims = store(ctx)?.reads().get_active_claims(&scope).await.gql()?;
        Ok(claims.into_iter().map(ExecutionClaim::from).collect())
    }

    /// The claim row of an execution, in whatever status.
    async fn claim(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> GqlResult<Option<ExecutionClaim>> {
        let scope = viewer(ctx)?.scope();
        let claim = store(ctx)?
            .reads()
            .get_claim_for_execution(&execution_id, &scope)
            .await
            .gql()?;
        Ok(claim.map(ExecutionClaim::from))
    }

    /// Recoveries of an execution, newest first.
    async fn recovery_history(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> GqlResult<Vec<ExecutionRecovery>> {
        let scope = viewer(ctx)?.scope();
        let rows = store(ctx)?
            .reads()
            .get_recovery_history(&execution_id, &scope)
            .await
            .gql()?;
        Ok(rows.into_iter().map(ExecutionRecovery::from).collect())
    }
}
