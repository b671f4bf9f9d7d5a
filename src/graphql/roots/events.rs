//! Events: the log's cursor and the live stream of a run's changes (the
//! store's `events`).

use async_graphql::{Context, Object, Subscription, ID};
use futures_util::{Stream, StreamExt};

use crate::graphql::error::{code, coded, GqlResult, OrGql};
use crate::graphql::types::{Execution, ExecutionEvent};
use crate::graphql::{store, viewer};
use crate::store::Position;

#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The event log's position now, as an `executionEvents(after:)` cursor.
    /// Take it before loading a tree, subscribe with it after: every change
    /// made in between is delivered (some may repeat what the load saw).
    async fn event_cursor(&self, ctx: &Context<'_>) -> GqlResult<String> {
        Ok(store(ctx)?.events().cursor().await.gql()?.encode())
    }
}

#[derive(Default)]
pub struct EventsSubscription;

#[Subscription(name = "Subscription")]
impl EventsSubscription {
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
        if after.is_none()
            && store
                .reads()
                .get(&root_execution_id, &scope)
                .await
                .gql()?
                .is_none()
        {
            return Err(coded(
                code::NOT_FOUND,
                format!("execution {} not found", root_execution_id.0),
            ));
        }
        // Counted while the stream lives (it drops with the subscription).
        let live = crate::metrics::LiveSubscription::start();
        let events = store.events().follow(root_execution_id.0, &scope, after);
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
