//! Schema changes only. Each migration is plain SQL per backend: the schema is
//! small, and spelling it out keeps the indexes, CHECKs and cascades exactly
//! what the store's queries were written against.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_created_queue_by_flow;
mod m20261125_000003_claimable_queue;
mod m20261125_000004_roots_by_status;
mod m20261126_000005_event_log;
mod m20261126_000006_finished_roots;
mod m20261126_000007_run_search;
mod m20261126_000008_events_per_statement;
mod m20261126_000009_fewer_index_entries;
mod m20261126_000010_claims_follow_by_trigger;
mod m20261126_000011_no_created_queue;
mod m20261202_000012_time_in_the_queue;
mod m20261202_000013_run_control;
mod m20261203_000014_flow_deadlines;
mod m20261203_000015_concurrency_limits;
mod m20261203_000016_node_timeouts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_created_queue_by_flow::Migration),
            Box::new(m20261125_000003_claimable_queue::Migration),
            Box::new(m20261125_000004_roots_by_status::Migration),
            Box::new(m20261126_000005_event_log::Migration),
            Box::new(m20261126_000006_finished_roots::Migration),
            Box::new(m20261126_000007_run_search::Migration),
            Box::new(m20261126_000008_events_per_statement::Migration),
            Box::new(m20261126_000009_fewer_index_entries::Migration),
            Box::new(m20261126_000010_claims_follow_by_trigger::Migration),
            Box::new(m20261126_000011_no_created_queue::Migration),
            Box::new(m20261202_000012_time_in_the_queue::Migration),
            Box::new(m20261202_000013_run_control::Migration),
            Box::new(m20261203_000014_flow_deadlines::Migration),
            Box::new(m20261203_000015_concurrency_limits::Migration),
            Box::new(m20261203_000016_node_timeouts::Migration),
        ]
    }
}
