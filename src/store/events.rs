//! Change events for subscriptions. Every write of the store publishes here;
//! subscribers filter by root. Publishing with no subscriber costs nothing.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::Execution;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

#[derive(Clone, Debug)]
pub struct ExecutionEvent {
    pub kind: EventKind,
    pub execution_id: String,
    pub root_execution_id: String,
    /// The row after the change; `None` for deletions.
    pub execution: Option<Execution>,
}

impl ExecutionEvent {
    pub fn changed(kind: EventKind, execution: Execution) -> Self {
        Self {
            kind,
            execution_id: execution.id.clone(),
            root_execution_id: execution.root_execution_id.clone(),
            execution: Some(execution),
        }
    }

    pub fn deleted(execution_id: String, root_execution_id: String) -> Self {
        Self {
            kind: EventKind::Deleted,
            execution_id,
            root_execution_id,
            execution: None,
        }
    }
}

/// In-process fan-out of execution events.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<ExecutionEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self { sender }
    }

    pub fn publish(&self, event: ExecutionEvent) {
        // An error only means nobody listens right now.
        let _ = self.sender.send(Arc::new(event));
    }

    pub fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ExecutionEvent>> {
        self.sender.subscribe()
    }
}
