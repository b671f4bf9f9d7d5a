//! The work queue: claims by id, pulls, heartbeats, releases, finishes and
//! recovery. Every operation that could race with another worker is one
//! statement on PostgreSQL and one write of a SQLite commit group (one
//! writer at a time), so that concurrent workers never both win.
//!
//! Lock order on PostgreSQL: every path that touches both rows (claim, pull,
//! heartbeat, release, finish) locks the execution row before the claim row,
//! so two of them never wait on each other in opposite orders. A single
//! operation and its batch are one code path: a claim, heartbeat or finish
//! of one execution is a batch of one.

mod claim;
mod due;
mod finish;
mod heartbeat;
mod node_timeouts;
mod pull;
mod recovery;

use chrono::{DateTime, Utc};

use crate::store::db::Db;
use entity::execution::Model as Execution;
use entity::execution_claim::Model as Claim;
use entity::{ClaimStatus, ExecutionStatus};

pub use node_timeouts::NODE_TIMEOUT;
pub use recovery::NewRecovery;

/// Claims, pulls, heartbeats, finishes, recovery. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    db: Db,
}

impl Queue {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Why a claim was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRejection {
    NotFound,
    Terminal,
    HeldByOther,
    /// It is queued under a paused execution (`pauseExecution`) until
    /// `resumeExecution`; only a worker whose claim on it is live may claim
    /// it again.
    Paused,
    /// Its run (`maxConcurrency`) or its key (`setConcurrencyLimit`) is at
    /// its limit: it waits for a slot.
    ConcurrencyLimit,
}

#[derive(Clone, Debug)]
pub struct ClaimOutcome {
    pub claim: Option<Claim>,
    pub rejection: Option<ClaimRejection>,
}

impl ClaimOutcome {
    pub fn acquired(&self) -> bool {
        self.claim.is_some()
    }
}

/// `finishExecution`'s input.
#[derive(Clone, Debug)]
pub struct Finish {
    pub execution_id: String,
    pub worker_id: String,
    /// COMPLETED, FAILED or STOPPED; CREATED puts it back in the queue.
    pub status: ExecutionStatus,
    pub error_message: Option<String>,
    pub error_node_id: Option<String>,
    /// Recorded as `lastFailureReason` (a retry without one records the
    /// error message).
    pub failure_reason: Option<String>,
    /// A retry is due again after this many milliseconds instead of its
    /// backoff (see `db::retry`).
    pub retry_in_ms: Option<i64>,
}

/// One item of `finish_many`.
#[derive(Clone, Debug)]
pub struct FinishOutcome {
    pub execution_id: String,
    /// `None` when it finished; else why not: NOT_FOUND, CONFLICT.
    pub refusal: Option<&'static str>,
    pub execution: Option<Execution>,
}

/// One item of `extend_many`.
#[derive(Clone, Debug)]
pub struct ClaimExtension {
    pub execution_id: String,
    /// The new expiry; `None` when this worker holds no live claim on it.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why not, when it says more than "not held": `CANCELLED` (the
    /// execution was cancelled; stop working on it).
    pub code: Option<&'static str>,
}

/// The claim an execution carries once claimed: its processing worker,
/// since when, until when, last heartbeat (the claim statements write these
/// with the claim row, in the same statement).
fn claim_of(execution: &Execution) -> Option<Claim> {
    Some(Claim {
        execution_id: execution.id.clone(),
        worker_id: execution.processing_worker_id.clone()?,
        claimed_at: execution.processing_started_at?,
        expires_at: execution.lease_expires_at?,
        heartbeat_at: execution.updated_at,
        status: ClaimStatus::Active,
    })
}

fn expiry(now: DateTime<Utc>, timeout_ms: i64) -> DateTime<Utc> {
    now + chrono::Duration::milliseconds(timeout_ms)
}
