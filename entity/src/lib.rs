//! SeaORM models of execstore's four tables. Nothing but the models lives here:
//! queries are in the root crate's `store` module, schema changes in `migration`.

pub mod execution;
pub mod execution_claim;
pub mod execution_recovery;
pub mod recovery_lock;

pub use execution::ExecutionStatus;
pub use execution_claim::ClaimStatus;
