//! execstore: a GraphQL API server that stores executions of flows and
//! coordinates the workers that run them.

pub mod auth;
pub mod config;
pub mod graphql;
pub mod http;
pub mod store;
pub mod throwaway_pg;
