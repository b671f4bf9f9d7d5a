use async_graphql::{Context, Subscription, ID};
use futures_util::{Stream, StreamExt};

use super::error::{code, coded, OrGql};
use super::types::{Execution, ExecutionEvent};
use super::{store, viewer};
use crate::store::Position;

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every create, update, claim change and delete in a root's tree, in
    /// commit order. Without `after`: from now on. With `after` (the
    /// `cursor` of an event already received): first every event of the
    /// root after it, then live, with no gap and no repeat. A cursor older
    /// than the log retains (`EXECSTORE_EVENT_RETENTION`) ends the stream
    /// with the error `EVENTS_EXPIRED`: reload the tree, then subscribe
    /// without `after`.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        root_execution_id: ID,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ExecutionEvent>>> {
        let scope = viewer(ctx)?.scope();
        let store = store(ctx)?;
        let after = after.as_deref().map(Position::decode).transpose().gql()?;
        // A resuming client may follow a tree deleted while it was away:
        // its DELETED events are in the log (and owner-filtered like all).
        if after.is_none() && store.get(&root_execution_id, &scope).await.gql()?.is_none() {
            return Err(coded(
                code::NOT_FOUND,
                format!("execution {} not found", root_execution_id.0),
            ));
        }
        // Counted while the stream lives (it drops with the subscription).
        let live = crate::metrics::LiveSubscription::start();
        let events = store.follow_events(root_execution_id.0, &scope, after);
        Ok(events.map(move |event| {
            let _live = &live;
            let event = event.gql()?;
            Ok(ExecutionEvent {
                kind: event.kind.into(),
                execution_id: ID(event.execution_id.clone()),
                cursor: event.cursor(),
                execution: event.execution.clone().map(Execution::shared),
            })
        }))
    }
}
