//! The execution store: every operation of the seed `PostgresExecutionStore`,
//! on SQLite or PostgreSQL, in layers a module only imports from below:
//!
//! - `sql`: every statement, whole, one file per operation and backend, and
//!   the table that picks them;
//! - `db`: the one database handle (connections, the SQLite writer,
//!   wake-ups, queue heads, the statement table chosen at connect), rows,
//!   errors, and what every part shares. The only place that knows which
//!   backend it runs on;
//! - `events`: the event log and its live delivery;
//! - `runs` (create, update, delete, retention), `queue` (claims, pulls,
//!   heartbeats, finishes, recovery), `reads` (trees, children, feeds,
//!   flows, stats);
//! - `janitor` and `execution_store`, which hold the parts together.

mod db;
mod events;
mod execution_store;
mod janitor;
mod queue;
mod reads;
mod runs;
mod sql;

pub use db::{
    after_all, before_all, connect, defaults, limits, migrate, now, truncate_micros, Columns,
    ConcurrencyLimit, Cursor, Db, DbOptions, EventBus, GroupCommitStats, PoolStats, ReadRoute,
    RetryPolicy, Scope, SqliteSync, Standbys, StoreError, StoreResult, MAX_GROUP,
    MAX_RETRY_DELAY_MS,
};
pub use events::{EventKind, EventLogStats, Events, LoggedEvent, Position, SUBSCRIBER_QUEUE};
pub use execution_store::{ExecutionStore, RoutedReads};
pub use janitor::{Janitor, JanitorReport, JanitorSettings, PRUNE_BATCH, RUNS_BATCH};
pub use queue::{
    ClaimExtension, ClaimOutcome, ClaimRejection, Finish, FinishOutcome, NewRecovery, Queue,
    NODE_TIMEOUT,
};
pub use reads::{
    tree_levels, ChildWindow, ExecutionStats, Flow, Page, QueueDepth, Reads, RootExecution,
    RootFilter,
};
pub use runs::{CreateExecution, Runs, RunsDeleted, StatusUpdate};

pub use entity::execution::Model as Execution;
pub use entity::execution_claim::Model as Claim;
pub use entity::execution_recovery::Model as Recovery;
pub use entity::{ClaimStatus, ExecutionStatus};
