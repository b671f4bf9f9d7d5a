//! What a write changed, declared by the write and turned into wake-ups in
//! one place (`Db::write`), after its commit: the log reader for every
//! change, waiting workers when work may have appeared, the queue heads
//! when work came back or was created behind them.

use entity::execution::Model as Execution;
use entity::ExecutionStatus;

use super::bus::EventBus;
use super::heads::{QueueHeads, QueueKey};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub(crate) struct Effects {
    /// Rows were written, and with them the event log.
    logged: bool,
    /// An execution may be claimable now: wake waiting workers.
    work: bool,
    /// Executions may be claimable *again* (released, retried, a lapsed
    /// lease put back, a status set back to CREATED): pulls read the queue
    /// from its start.
    requeued: bool,
    /// The oldest CREATED execution this write created (or updated): queue
    /// heads past it are forgotten.
    created_from: Option<QueueKey>,
}

impl Effects {
    /// Nothing was written.
    pub fn none() -> Self {
        Self::default()
    }

    /// Rows were written (and logged); no work appeared.
    pub fn logged() -> Self {
        Self {
            logged: true,
            ..Self::default()
        }
    }

    /// `executions` were written: logged when there are any, work when one
    /// of them is CREATED.
    pub fn changed<'a>(executions: impl IntoIterator<Item = &'a Execution>) -> Self {
        let mut effects = Self::none();
        for execution in executions {
            effects.logged = true;
            effects.work |= execution.status == ExecutionStatus::Created;
        }
        effects
    }

    /// `executions` were created at `at` (or, for an existing id, updated):
    /// one set back to CREATED (its stamp is older) is back in the queue;
    /// queue heads past the oldest CREATED one are forgotten.
    pub fn created(executions: &[Execution], at: chrono::DateTime<chrono::Utc>) -> Self {
        let waiting = executions
            .iter()
            .filter(|e| e.status == ExecutionStatus::Created);
        Self {
            logged: true,
            work: false,
            requeued: waiting.clone().any(|e| e.created_at != at),
            created_from: waiting.map(|e| (e.created_at, e.id.clone())).min(),
        }
    }

    /// These effects, and executions back in the queue when `requeued`.
    pub fn requeued_if(mut self, requeued: bool) -> Self {
        self.requeued |= requeued;
        self
    }

    /// Wakes whom the write concerns, in this order: a requeue first (the
    /// NOTIFY that `committed` sends carries it), then waiting workers, then
    /// the log readers.
    pub fn apply(self, bus: &EventBus, heads: &QueueHeads) {
        if self.requeued {
            bus.requeued();
        }
        if let Some(oldest) = &self.created_from {
            heads.created(oldest);
        }
        if self.work || self.created_from.is_some() {
            bus.signal_work();
        }
        if self.logged {
            bus.committed();
        }
    }
}
