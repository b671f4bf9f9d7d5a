//! The GraphQL schema over the store: types, roots, DataLoaders, errors.

pub mod budget;
pub mod documents;
pub mod error;
pub mod fast_tree;
pub mod fields;
pub mod guards;
mod input_text;
pub mod levels;
pub mod loaders;
pub mod persisted;
pub mod request_hooks;
mod roots;
pub mod types;

use std::sync::Arc;

use async_graphql::{Context, Schema};

use crate::auth::Viewer;
use crate::store::ExecutionStore;
use error::{internal, GqlResult};
use persisted::PersistedOperations;

pub use loaders::Loaders;
pub use roots::{MutationRoot, QueryRoot, SubscriptionRoot};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Bounds applied to every operation before it touches the database
/// (built from the configuration: `Config::schema_limits`).
#[derive(Clone, Debug)]
pub struct SchemaLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Most directives on one field (checked before validation).
    pub max_directives: usize,
    pub introspection: bool,
    /// The longest `claimNextExecutions(waitMs:)` accepted.
    pub max_wait_ms: i64,
}

/// `SchemaLimits::max_wait_ms`, as schema data for the resolver.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxWaitMs(pub i64);

pub fn build_schema(
    store: ExecutionStore,
    limits: &SchemaLimits,
    persisted: Arc<PersistedOperations>,
) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(store)
    .data(MaxWaitMs(limits.max_wait_ms))
    .data(persisted)
    .extension(request_hooks::RequestHooks)
    .limit_depth(limits.max_depth)
    // Both checked on the parsed document before validation. The recursion
    // counts every selection set, fragments' and inline fragments' too, so
    // it gets twice the depth limit: a query within the depth limit that
    // spreads one fragment per level passes; deeper chains of fragments do
    // not. The directive limit counts directives on fields only (those of
    // fragments and operations fall to validation).
    .limit_recursive_depth(limits.max_depth.saturating_mul(2).max(8))
    .limit_directives(limits.max_directives)
    .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL the code produces (what `schema.graphql` must equal).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}

pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> GqlResult<&'a Viewer> {
    ctx.data::<Viewer>()
        .map_err(|e| internal(&format!("request without viewer: {}", e.message)))
}

pub(crate) fn store<'a>(ctx: &Context<'a>) -> GqlResult<&'a ExecutionStore> {
    ctx.data::<ExecutionStore>()
        .map_err(|e| internal(&format!("schema without store: {}", e.message)))
}
