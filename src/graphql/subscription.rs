use async_graphql::{Context, Subscription, ID};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::error::{code, coded, OrGql};
use super::types::{Execution, ExecutionEvent, ExecutionEventKind};
use super::{store, viewer};
use crate::store::EventKind;

pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every create, update, claim change and delete in a root's tree.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        root_execution_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ExecutionEvent>> {
        let scope = viewer(ctx)?.scope();
        let store = store(ctx)?;
        // Subscribe before checking, so nothing between the check and the
        // first event is missed.
        let receiver = store.events().subscribe();
        if store.get(&root_execution_id, &scope).await.gql()?.is_none() {
            return Err(coded(
                code::NOT_FOUND,
                format!("execution {} not found", root_execution_id.0),
            ));
        }
        let root = root_execution_id.0;
        let owner = scope.owner().map(str::to_owned);
        // Counted while the stream lives (it drops with the subscription).
        let live = crate::metrics::LiveSubscription::start();
        Ok(BroadcastStream::new(receiver).filter_map(move |event| {
            let _live = &live;
            let item = match event {
                Ok(event) if event.root_execution_id == root => {
                    let visible = owner.as_ref().is_none_or(|owner| &event.owner_id == owner);
                    visible.then(|| ExecutionEvent {
                        kind: match event.kind {
                            EventKind::Created => ExecutionEventKind::Created,
                            EventKind::Updated => ExecutionEventKind::Updated,
                            EventKind::Deleted => ExecutionEventKind::Deleted,
                        },
                        execution_id: ID(event.execution_id.clone()),
                        execution: event.execution.clone().map(Execution::single),
                    })
                }
                // Not this tree, or this subscriber fell behind (lagged):
                // a lagged subscriber skips what it missed.
                _ => None,
            };
            async move { item }
        }))
    }
}
