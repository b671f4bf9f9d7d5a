//! The in-process wake-ups of the store: the log reader (here, and through
//! the relay in other processes) and the workers waiting for work. A write
//! never publishes anything from memory: it only wakes the readers of the
//! log (see `events`), and waiting workers try the queue again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Notify};

/// Cheap to clone; every clone is the same bus.
#[derive(Clone)]
pub struct EventBus(Arc<Bus>);

struct Bus {
    /// Bumped whenever an execution may have become claimable (a CREATED
    /// row was written here, or something changed in another process), so
    /// that `claimNextExecutions(waitMs:)` wakes instead of polling.
    work: watch::Sender<u64>,
    /// Bumped whenever an execution may have become claimable *again* here
    /// or in another process (released, retried, its lease put back, its
    /// status set back to CREATED): pulls then read the queue from its start
    /// (`heads`).
    requeues: AtomicU64,
    /// A requeue here that the next NOTIFY has not announced yet.
    requeue_unsent: AtomicBool,
    /// Wakes the log reader.
    wake: Notify,
    /// This process, so it ignores its own NOTIFY echo.
    origin: String,
    /// Asks the relay's NOTIFY task to tell other processes (PostgreSQL).
    relay: OnceLock<mpsc::UnboundedSender<()>>,
    /// The earliest due time a write of this process made an execution wait
    /// for (the due timer sleeps until the earliest it knows).
    due: watch::Sender<Option<DateTime<Utc>>>,
    /// The due timer runs (started by the first pull).
    timing: AtomicBool,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self(Arc::new(Bus {
            work: watch::Sender::new(0),
            requeues: AtomicU64::new(0),
            requeue_unsent: AtomicBool::new(false),
            wake: Notify::new(),
            origin: uuid::Uuid::now_v7().to_string(),
            relay: OnceLock::new(),
            due: watch::Sender::new(None),
            timing: AtomicBool::new(false),
        }))
    }

    /// This process committed a change that appended to the log: wake the
    /// log reader, here and (through NOTIFY) in other processes.
    pub(crate) fn committed(&self) {
        self.0.wake.notify_one();
        if let Some(relay) = self.0.relay.get() {
            let _ = relay.send(());
        }
    }

    /// Tells waiting workers that work may have appeared.
    pub fn signal_work(&self) {
        self.0.work.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Executions may be claimable again that were not (before the write's
    /// `committed`, so the NOTIFY it sends says so).
    pub(crate) fn requeued(&self) {
        self.0.requeue_unsent.store(true, Ordering::SeqCst);
        self.requeued_elsewhere();
    }

    /// Another process requeued (or its notifications may have been lost).
    pub(crate) fn requeued_elsewhere(&self) {
        self.0.requeues.fetch_add(1, Ordering::SeqCst);
        self.signal_work();
    }

    /// How many requeues this process has seen (it only grows).
    #[doc(hidden)]
    pub fn requeues(&self) -> u64 {
        self.0.requeues.load(Ordering::SeqCst)
    }

    /// A receiver whose `changed()` resolves at the next `signal_work`.
    pub fn watch_work(&self) -> watch::Receiver<u64> {
        self.0.work.subscribe()
    }

    /// Resolves at the next wake-up of the log reader.
    pub(crate) async fn woken(&self) {
        self.0.wake.notified().await
    }

    /// Wakes the log reader (another process wrote).
    pub(crate) fn wake_reader(&self) {
        self.0.wake.notify_one();
    }

    pub(crate) fn origin(&self) -> &str {
        &self.0.origin
    }

    /// Whether a requeue here waits to be announced (and no longer does).
    pub(crate) fn take_unsent_requeue(&self) -> bool {
        self.0.requeue_unsent.swap(false, Ordering::SeqCst)
    }

    /// A requeue could not be announced: announce it with the next NOTIFY.
    pub(crate) fn keep_unsent_requeue(&self) {
        self.0.requeue_unsent.store(true, Ordering::SeqCst);
    }

    /// An execution now waits until `at` (the due timer wakes for it when
    /// that is earlier than what it waits for).
    pub(crate) fn waiting_until(&self, at: DateTime<Utc>) {
        self.0.due.send_if_modified(|due| match *due {
            Some(known) if known <= at => false,
            _ => {
                *due = Some(at);
                true
            }
        });
    }

    /// A receiver whose `changed()` resolves when a write makes an
    /// execution wait (see `waiting_until`); its value is the earliest time.
    pub(crate) fn watch_due(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.0.due.subscribe()
    }

    /// The due timer has run out to `until`: times before it are done.
    pub(crate) fn due_done(&self, until: DateTime<Utc>) {
        self.0.due.send_if_modified(|due| match *due {
            Some(known) if known <= until => {
                *due = None;
                true
            }
            _ => false,
        });
    }

    /// True the first time it is asked: the caller starts the due timer.
    pub(crate) fn start_timing(&self) -> bool {
        !self.0.timing.swap(true, Ordering::AcqRel)
    }

    /// Starts telling other processes of this one's commits through `relay`;
    /// false when it already does.
    pub(crate) fn relay_to(&self, relay: mpsc::UnboundedSender<()>) -> bool {
        self.0.relay.set(relay).is_ok()
    }
}
