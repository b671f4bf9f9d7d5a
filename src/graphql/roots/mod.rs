//! The schema's roots, one part per part of the store (`runs`, `queue`,
//! `reads`, `events`), merged into `Query`, `Mutation` and `Subscription`.
//! Resolvers are thin: they check the GraphQL arguments and call the store.

mod events;
mod queue;
mod reads;
mod runs;

use async_graphql::MergedObject;

pub use events::EventsSubscription as SubscriptionRoot;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(reads::ReadsQuery, queue::QueueQuery, events::EventsQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(runs::RunsMutation, queue::QueueMutation);
