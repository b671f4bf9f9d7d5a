//! The HTTP surface: `/graphql` (POST, GraphiQL on GET, `/graphql/ws`), the
//! explorer, health, readiness, metrics and the SDL.

mod graphql;
mod ops;
mod pages;
mod router;

pub use router::{metrics_router, router, App, CONSISTENCY_HEADER};
