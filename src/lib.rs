//! execstore: a GraphQL API server that stores executions of flows and
//! coordinates the workers that run them.

// Request handling has no panic path: errors are values all the way out.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod assets;
pub mod auth;
pub mod config;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod store;
