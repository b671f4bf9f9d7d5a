//! What a write changed, declared by the write and turned into wake-ups in
//! one place (`Db::write`), after its commit: the log reader for every
//! change, waiting workers when work may have appeared, the queue heads
//! when work came back or was created behind them.

use entity::execution::Model as Execution;
use entity::ExecutionStatus;

use super::bus::EventBus;
use super::heads::{queue_key, QueueHeads, QueueKey};
use super::slots::Slots;

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
    /// The earliest time an execution this write made wait is due.
    waiting_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Slots this write may have freed or asked for: `Db::write` admits to
    /// them (in the same commit group on SQLite, right after the commit on
    /// PostgreSQL; see `db::slots`).
    admit: Slots,
}

/// Claimable now: CREATED and without a lease.
fn claimable(e: &Execution) -> bool {
    e.status == ExecutionStatus::Created && e.lease_expires_at.is_none()
}

/// Waiting for its due time: CREATED, its lease its due time.
fn waiting(e: &Execution) -> Option<chrono::DateTime<chrono::Utc>> {
    (e.status == ExecutionStatus::Created
        && e.lease_expires_at.is_some()
        && e.lease_expires_at == e.run_at)
        .then_some(e.lease_expires_at)
        .flatten()
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
    /// of them is claimable, a wait when one waits for its due time.
    pub fn changed<'a>(executions: impl IntoIterator<Item = &'a Execution>) -> Self {
        let mut effects = Self::none();
        for execution in executions {
            effects.logged = true;
            effects.work |= claimable(execution);
            effects.wait_for(waiting(execution));
        }
        effects
    }

    fn wait_for(&mut self, at: Option<chrono::DateTime<chrono::Utc>>) {
        if let Some(at) = at {
            self.waiting_until = Some(self.waiting_until.map_or(at, |known| known.min(at)));
        }
    }

    /// Executions that were not claimable are now (put back in the queue):
    /// requeued when there are any.
    pub fn requeued_when<'a>(
        mut self,
        executions: impl IntoIterator<Item = &'a Execution>,
    ) -> Self {
        self.requeued |= executions.into_iter().any(claimable);
        self
    }

    /// `executions` were created at `at` (or, for an existing id, updated):
    /// one set back to CREATED (its stamp is older) is back in the queue;
    /// queue heads past the first claimable one are forgotten; the due timer
    /// learns of those not due yet.
    pub fn created(executions: &[Execution], at: chrono::DateTime<chrono::Utc>) -> Self {
        let queued = executions.iter().filter(|e| claimable(e));
        let mut effects = Self {
            logged: true,
            work: false,
            requeued: queued.clone().any(|e| e.created_at != at),
            created_from: queued.map(queue_key).min(),
            waiting_until: None,
            admit: Slots::default(),
        };
        for execution in executions {
            effects.wait_for(waiting(execution));
        }
        effects
    }

    /// These effects, and an admission to `slots` after the write.
    pub fn admitting(mut self, slots: Slots) -> Self {
        self.admit = slots;
        self
    }

    /// The admission these effects ask for, taken out of them.
    pub(super) fn take_admission(&mut self) -> Slots {
        std::mem::take(&mut self.admit)
    }

    /// Both writes' effects (a write and the admission that followed it).
    pub(super) fn and(mut self, other: Effects) -> Self {
        self.logged |= other.logged;
        self.work |= other.work;
        self.requeued |= other.requeued;
        self.created_from = match (self.created_from, other.created_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.wait_for(other.waiting_until);
        self
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
        if let Some(at) = self.waiting_until {
            bus.waiting_until(at);
        }
        if self.logged {
            bus.committed();
        }
    }
}
