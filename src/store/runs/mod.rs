//! Runs: executions created (one or many), updated, deleted with their
//! subtree, and whole finished runs removed by retention.

mod control;
mod create;
mod delete;
mod limits;
mod retention;
mod timeouts;
mod update;

use chrono::{DateTime, Utc};
use sea_orm::JsonValue;

use crate::store::db::Db;
use entity::ExecutionStatus;

pub use retention::RunsDeleted;

/// Creates, updates, deletes, retention. Cheap to clone.
#[derive(Clone)]
pub struct Runs {
    db: Db,
}

impl Runs {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CreateExecution {
    /// Client-supplied id; a UUIDv7 is generated when absent.
    pub id: Option<String>,
    pub flow_id: String,
    pub owner_id: String,
    pub parent_execution_id: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub options: Option<JsonValue>,
    pub integration: Option<JsonValue>,
    pub external_events: Option<JsonValue>,
    /// When it may first be handed out (None: at its creation).
    pub run_at: Option<DateTime<Utc>>,
    /// −100 to 100, higher first (None: 0).
    pub priority: Option<i32>,
    /// The key whose concurrency limit it counts against (None: none).
    pub concurrency_key: Option<String>,
}

/// `updateExecutionStatus`: the status plus the optional fields to set; a
/// field left `None` keeps its stored value.
#[derive(Clone, Debug)]
pub struct StatusUpdate {
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub processing_started_at: Option<DateTime<Utc>>,
    pub processing_worker_id: Option<String>,
    pub failure_count: Option<i32>,
    pub last_failure_reason: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl StatusUpdate {
    pub fn new(execution_id: impl Into<String>, status: ExecutionStatus) -> Self {
        Self {
            execution_id: execution_id.into(),
            status,
            error_message: None,
            error_node_id: None,
            started_at: None,
            completed_at: None,
            processing_started_at: None,
            processing_worker_id: None,
            failure_count: None,
            last_failure_reason: None,
            last_failure_at: None,
        }
    }
}

/// The one rule for the times a status stamps when the caller gives none:
/// RUNNING starts the clock, a terminal status stops it. (A create stamps
/// the same way; the statements only bind what this returns.)
pub(crate) fn default_times(
    status: ExecutionStatus,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let started = match (status, started_at, completed_at) {
        (ExecutionStatus::Running, None, None) => Some(now),
        _ => started_at,
    };
    let completed = match completed_at {
        None if status.is_terminal() => Some(now),
        other => other,
    };
    (started, completed)
}
