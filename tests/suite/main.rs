//! The whole test suite in one binary (one build, one PostgreSQL cluster).
//! Every storage test runs twice: against a SQLite file and against PostgreSQL.

mod api_access;
mod api_batches;
mod api_control;
mod api_limits;
mod api_operate;
mod api_queries;
mod api_runs;
mod api_server;
mod api_support;
mod api_trees;
mod browser;
mod fixtures;
mod fuzz;
mod harness;
mod layers;
mod process;
mod standby;
mod store_batches;
mod store_claims;
mod store_concurrency;
mod store_control;
mod store_events;
mod store_executions;
mod store_feeds;
mod store_group_commit;
mod store_plans;
mod store_queue;
mod store_recovery;
mod store_retention;
mod store_time;
mod store_timeouts;
mod ui_explorer;
mod ui_explorer_control;
mod ui_explorer_runs;
mod ui_graphiql;
