//! The HTTP surface: `/graphql` (POST and GET, GraphiQL for browsers),
//! `/graphql/ws`, the explorer, health, readiness, metrics and the SDL.

mod graphql;
mod media;
mod ops;
mod pages;
mod params;
mod router;

pub use router::{metrics_router, router, App, CONSISTENCY_HEADER};
