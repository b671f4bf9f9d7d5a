//! Events: the log every change appends to (`log`) and its live delivery to
//! subscribers (`delivery`).

mod delivery;
mod log;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::store::db::Db;

pub use delivery::SUBSCRIBER_QUEUE;
pub use log::{EventKind, EventLogStats, LoggedEvent, Position};

/// The event log and who follows it in this process. Cheap to clone.
#[derive(Clone)]
pub struct Events {
    db: Db,
    delivery: Arc<Delivery>,
}

/// The subscribers of this process, by root, and the log reader's place.
#[derive(Default)]
struct Delivery {
    registry: Mutex<Registry>,
    /// The log reader runs (started by the first subscriber).
    reading: AtomicBool,
}

#[derive(Default)]
struct Registry {
    /// Every event up to here has been handed to the subscribers it was
    /// for. `None` until the reader starts.
    position: Option<Position>,
    roots: HashMap<String, Vec<Subscriber>>,
    subscribers: usize,
    next_id: u64,
}

struct Subscriber {
    id: u64,
    owner: Option<String>,
    queue: mpsc::Sender<Arc<LoggedEvent>>,
}

impl Events {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            delivery: Arc::default(),
        }
    }

    pub fn has_subscribers(&self) -> bool {
        self.registry().subscribers > 0
    }

    /// The reader's position, the followed roots and the subscriber count
    /// (for a test that waits in vain to say why).
    #[doc(hidden)]
    pub fn describe(&self) -> String {
        let registry = self.registry();
        let roots: Vec<&String> = registry.roots.keys().collect();
        format!(
            "position {:?}, roots {roots:?}, subscribers {}, reading {}",
            registry.position,
            registry.subscribers,
            self.delivery
                .reading
                .load(std::sync::atomic::Ordering::Acquire)
        )
    }

    /// Live subscribers, and the most events any of them has waiting.
    pub fn subscriber_backlog(&self) -> (usize, usize) {
        let registry = self.registry();
        let slowest = registry
            .roots
            .values()
            .flatten()
            .map(|s| SUBSCRIBER_QUEUE - s.queue.capacity())
            .max()
            .unwrap_or(0);
        (registry.subscribers, slowest)
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding it cannot leave it half-written (every
        // change is one assignment or push), so a poisoned lock is usable.
        self.delivery
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn deregister(&self, root: &str, id: u64) {
        let mut registry = self.registry();
        let Some(list) = registry.roots.get_mut(root) else {
            return;
        };
        let before = list.len();
        list.retain(|s| s.id != id);
        let removed = before - list.len();
        if list.is_empty() {
            registry.roots.remove(root);
        }
        registry.subscribers -= removed;
    }
}
