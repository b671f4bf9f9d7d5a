//! Change events for subscriptions. Every write of the store publishes here;
//! subscribers filter by root. Publishing with no subscriber costs nothing.
//!
//! On PostgreSQL the bus also relays events between server processes: each
//! event goes out as a small NOTIFY (ids only, batched by a background task
//! so no request waits for it), and every process LISTENs, loads the row
//! when it has subscribers, and publishes it locally.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use super::{Execution, ExecutionStore, Scope, StoreResult};

const CHANNEL: &str = "execstore_events";

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
    /// Whose execution it is: subscribers of the `user` role see only theirs.
    pub owner_id: String,
    /// The row after the change; `None` for deletions.
    pub execution: Option<Execution>,
}

impl ExecutionEvent {
    pub fn changed(kind: EventKind, execution: Execution) -> Self {
        Self {
            kind,
            execution_id: execution.id.clone(),
            root_execution_id: execution.root_execution_id.clone(),
            owner_id: execution.owner_id.clone(),
            execution: Some(execution),
        }
    }

    pub fn deleted(execution_id: String, root_execution_id: String, owner_id: String) -> Self {
        Self {
            kind: EventKind::Deleted,
            execution_id,
            root_execution_id,
            owner_id,
            execution: None,
        }
    }
}

/// What crosses between processes: ids, not rows (NOTIFY payloads are small).
#[derive(Serialize, Deserialize)]
struct WireEvent {
    /// The publishing process, so it ignores its own echo.
    origin: String,
    kind: char,
    id: String,
    root: String,
    owner: String,
}

/// In-process fan-out of execution events, plus the relay to other processes
/// once `relay_events_across_processes` has started it.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<ExecutionEvent>>,
    /// Bumped whenever an execution may have become claimable (a CREATED
    /// row was written here, or a row changed in another process), so that
    /// `claimNextExecutions(waitMs:)` wakes instead of polling.
    work: Arc<watch::Sender<u64>>,
    origin: Arc<str>,
    relay: Arc<OnceLock<mpsc::UnboundedSender<String>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            work: Arc::new(watch::Sender::new(0)),
            origin: uuid::Uuid::now_v7().to_string().into(),
            relay: Arc::new(OnceLock::new()),
        }
    }

    pub fn publish(&self, event: ExecutionEvent) {
        crate::metrics::event_published();
        if let Some(relay) = self.relay.get() {
            let wire = WireEvent {
                origin: self.origin.to_string(),
                kind: match event.kind {
                    EventKind::Created => 'c',
                    EventKind::Updated => 'u',
                    EventKind::Deleted => 'd',
                },
                id: event.execution_id.clone(),
                root: event.root_execution_id.clone(),
                owner: event.owner_id.clone(),
            };
            if let Ok(text) = serde_json::to_string(&wire) {
                let _ = relay.send(text);
            }
        }
        self.publish_local(event);
    }

    /// Tells waiting workers that work may have appeared.
    pub fn signal_work(&self) {
        self.work.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves at the next `signal_work`.
    pub fn watch_work(&self) -> watch::Receiver<u64> {
        self.work.subscribe()
    }

    fn publish_local(&self, event: ExecutionEvent) {
        if event
            .execution
            .as_ref()
            .is_some_and(|e| e.status == super::ExecutionStatus::Created)
        {
            self.signal_work();
        }
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

impl ExecutionStore {
    /// PostgreSQL only (a no-op on SQLite): relays this process's events to
    /// every other execstore process on the same database, and theirs to this
    /// one's subscribers. Returns once this process is listening.
    pub async fn relay_events_across_processes(&self, database_url: &str) -> StoreResult<()> {
        use sea_orm::sqlx::postgres::PgListener;
        if self.backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let mut listener = PgListener::connect(database_url)
            .await
            .map_err(|e| sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))?;

        let (tx, rx) = mpsc::unbounded_channel();
        if self.events.relay.set(tx).is_err() {
            return Ok(()); // already relaying
        }
        tokio::spawn(notify_loop(database_url.to_owned(), rx));
        tokio::spawn(listen_loop(self.clone(), listener));
        Ok(())
    }
}

/// Sends queued events as NOTIFYs, as many per statement as are waiting,
/// on a connection of its own: a pooled one would be tested by sqlx each
/// time it went back to the pool, a second round trip per batch.
async fn notify_loop(database_url: String, mut rx: mpsc::UnboundedReceiver<String>) {
    use sea_orm::sqlx::{Connection, PgConnection};
    let mut connection: Option<PgConnection> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let payloads = serde_json::Value::from(batch).to_string();
        if connection.is_none() {
            match PgConnection::connect(&database_url).await {
                Ok(c) => connection = Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, "could not relay execution events to other processes");
                    continue;
                }
            }
        }
        let Some(c) = connection.as_mut() else {
            continue;
        };
        let sent = sea_orm::sqlx::query(&format!(
            "SELECT pg_notify('{CHANNEL}', value) FROM jsonb_array_elements_text(CAST($1 AS jsonb))"
        ))
        .bind(payloads)
        .execute(&mut *c)
        .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not relay execution events to other processes");
            connection = None;
        }
    }
}

/// Publishes other processes' events to this process's subscribers.
async fn listen_loop(store: ExecutionStore, mut listener: sea_orm::sqlx::postgres::PgListener) {
    loop {
        let notification = match listener.recv().await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(error = %err, "event listener lost its connection; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(wire) = serde_json::from_str::<WireEvent>(notification.payload()) else {
            continue;
        };
        if *wire.origin == *store.events.origin {
            continue;
        }
        if wire.kind != 'd' {
            // Another process created or changed an execution: it may be
            // work for a worker waiting here. Waking costs one claim attempt.
            store.events.signal_work();
        }
        if !store.events.has_subscribers() {
            continue;
        }
        let event = match wire.kind {
            'd' => Some(ExecutionEvent::deleted(wire.id, wire.root, wire.owner)),
            kind => match store.get(&wire.id, &Scope::All).await {
                Ok(Some(row)) => Some(ExecutionEvent::changed(
                    if kind == 'c' {
                        EventKind::Created
                    } else {
                        EventKind::Updated
                    },
                    row,
                )),
                Ok(None) => None, // deleted meanwhile; its DELETED event follows
                Err(err) => {
                    tracing::warn!(error = %err, "could not load a relayed execution event");
                    None
                }
            },
        };
        if let Some(event) = event {
            store.events.publish_local(event);
        }
    }
}
