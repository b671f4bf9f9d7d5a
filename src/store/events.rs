//! Live delivery of the event log to subscribers, and the wake-ups around it.
//!
//! Nothing is published from memory: every process reads the log (see
//! `event_log`) from its own position and hands each event to the
//! subscribers of that event's root only. A write only *wakes* the reader:
//! at once in the writing process, through a NOTIFY in the others
//! (PostgreSQL), and a slow poll catches anything a lost wake-up missed. So
//! a dropped LISTEN connection, a restart, or a crash between commit and
//! wake-up delays events; it never loses them.
//!
//! A subscriber has a bounded queue. One that falls behind is dropped from
//! the live fan-out and catches up by reading its root's events from the log
//! (where it left off), then rejoins: it never skips, and never holds the
//! others back. A subscriber that resumes from a cursor does the same from
//! that cursor. Replay and live meet at the position the reader had reached
//! when the subscriber joined: no gap, no repeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::{mpsc, watch, Notify};

pub use super::event_log::{EventKind, EventLogStats, LoggedEvent, Position};
use super::{Execution, ExecutionStatus, ExecutionStore, Scope, StoreError, StoreResult};

const CHANNEL: &str = "execstore_events";
/// Ends a NOTIFY's payload (after the sender's origin) when the writes it
/// announces put executions back in the queue.
const REQUEUED: &str = ";requeued";

/// Events one subscriber may have waiting before it is switched to reading
/// the log.
pub const SUBSCRIBER_QUEUE: usize = 1024;
/// Events read from the log per statement (live reading and replays).
const BATCH: i64 = 1000;
/// The live reader looks at the log this often even without a wake-up.
const POLL: Duration = Duration::from_millis(500);

/// In-process side of the event log: wake-ups for the log reader and for
/// waiting workers, and the subscribers by root.
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
    /// (`claims::QueueHeads`).
    requeues: AtomicU64,
    /// A requeue here that the next NOTIFY has not announced yet.
    requeue_unsent: AtomicBool,
    /// Wakes the log reader.
    wake: Notify,
    /// This process, so it ignores its own NOTIFY echo.
    origin: String,
    /// Asks the NOTIFY task to tell other processes (PostgreSQL).
    relay: OnceLock<mpsc::UnboundedSender<()>>,
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
            registry: Mutex::default(),
            reading: AtomicBool::new(false),
        }))
    }

    /// This process committed a change of `execution`: wake the log reader
    /// (here and, through NOTIFY, in other processes), and waiting workers
    /// when it may be claimable.
    pub(crate) fn changed(&self, execution: &Execution) {
        if execution.status == ExecutionStatus::Created {
            self.signal_work();
        }
        self.committed();
    }

    /// This process committed a change that appended to the log.
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

    /// Executions may be claimable again that were not (call before the
    /// write's `changed` or `committed`, so the NOTIFY they send says so).
    pub(crate) fn requeued(&self) {
        self.0.requeue_unsent.store(true, Ordering::SeqCst);
        self.requeued_elsewhere();
    }

    /// Another process requeued (or its notifications may have been lost).
    fn requeued_elsewhere(&self) {
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
            self.0.reading.load(Ordering::Acquire)
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
        self.0
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

impl ExecutionStore {
    /// A root's events as a stream: after `after` when given (first what
    /// the log holds, then live), else live from now. Ends with
    /// `EventsExpired` when the log no longer holds what follows the cursor.
    /// Only `scope`'s events (a user's own executions).
    pub fn follow_events(
        &self,
        root: String,
        scope: &Scope,
        after: Option<Position>,
    ) -> impl Stream<Item = StoreResult<Arc<LoggedEvent>>> + Send + 'static {
        let follower = Follower {
            store: self.clone(),
            root,
            owner: scope.owner().map(str::to_owned),
            last: after,
            replay_to: None,
            live: None,
            past: Default::default(),
            id: 0,
            ready: VecDeque::new(),
            ended: false,
        };
        futures_util::stream::unfold(follower, |mut f| async move {
            let item = f.next().await?;
            Some((item, f))
        })
    }

    /// The log's position now, as a cursor: load a tree, then subscribe with
    /// `after` set to a cursor taken before the load, and nothing written in
    /// between is missed (some events may repeat what the load saw).
    pub async fn event_cursor(&self) -> StoreResult<Position> {
        self.event_log_head().await
    }

    /// A position live delivery cannot start before: the reader's (it only
    /// moves forward), or the log's head while nobody listens (the next
    /// subscriber brings the reader there or later).
    async fn live_position_floor(&self) -> StoreResult<Position> {
        let position = {
            let registry = self.events.registry();
            (registry.subscribers > 0)
                .then_some(registry.position)
                .flatten()
        };
        match position {
            Some(position) => Ok(position),
            None => self.event_log_head().await,
        }
    }

    /// Joins the live fan-out for `root`: the queue, the subscriber's id,
    /// and the position live delivery starts after.
    async fn register(
        &self,
        root: &str,
        owner: Option<String>,
    ) -> StoreResult<(mpsc::Receiver<Arc<LoggedEvent>>, u64, Position)> {
        self.start_reading();
        // The reader does not move while nobody listens: the first to join
        // brings its position to the head (so "live" means from now).
        let head = match self.events.has_subscribers() {
            false => Some(self.event_log_head().await?),
            true => None,
        };
        let (queue, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut registry = self.events.registry();
        if let Some(head) = head {
            if registry.subscribers == 0 && registry.position.is_none_or(|p| p < head) {
                registry.position = Some(head);
            }
        }
        let position = registry.position.unwrap_or_default();
        registry.next_id += 1;
        let id = registry.next_id;
        registry
            .roots
            .entry(root.to_owned())
            .or_default()
            .push(Subscriber { id, owner, queue });
        registry.subscribers += 1;
        Ok((receiver, id, position))
    }

    /// Starts this process's log reader once. Its position is set by the
    /// first subscriber to join (`register` brings it to the head).
    fn start_reading(&self) {
        if !self.events.0.reading.swap(true, Ordering::AcqRel) {
            tokio::spawn(read_log(self.clone()));
        }
    }

    /// Hands every readable event after the reader's position to the
    /// subscribers of its root. Returns whether committed events wait
    /// behind a running transaction (read again soon).
    async fn deliver_new_events(&self) -> StoreResult<bool> {
        loop {
            let (from, idle) = {
                let registry = self.events.registry();
                (
                    registry.position.unwrap_or_default(),
                    registry.subscribers == 0,
                )
            };
            if idle {
                // Nobody listens: nothing to read. The next subscriber to
                // join moves the position to the head first (`register`).
                return Ok(false);
            }
            let batch = self.event_log_tail(from, BATCH).await?;
            let Some(last) = batch.events.last().map(|e| e.position) else {
                return Ok(batch.pending);
            };
            let full = batch.events.len() as i64 == BATCH;
            crate::metrics::events_read(batch.events.len());
            // Rows are read only for the roots someone follows now; a root
            // that gains its first subscriber meanwhile is caught below.
            let followed: std::collections::HashSet<String> =
                self.events.registry().roots.keys().cloned().collect();
            let (wanted, others): (Vec<_>, Vec<_>) = batch
                .events
                .into_iter()
                .partition(|e| followed.contains(&e.root_execution_id));
            let mut events: Vec<(Arc<LoggedEvent>, bool)> = self
                .with_current_rows(wanted)
                .await?
                .into_iter()
                .map(|e| (Arc::new(e), true))
                .chain(others.into_iter().map(|e| (Arc::new(e), false)))
                .collect();
            events.sort_by_key(|(e, _)| e.position);
            let mut registry = self.events.registry();
            let registry = &mut *registry;
            let mut reached = from;
            for (event, loaded) in &events {
                let Some(list) = registry.roots.get_mut(&event.root_execution_id) else {
                    reached = event.position;
                    continue;
                };
                if !loaded {
                    // Its root gained a subscriber after the rows were read:
                    // stop here; the next round reads on from this event.
                    registry.position = Some(reached);
                    return Ok(true);
                }
                let before = list.len();
                list.retain(|s| {
                    if s.owner.as_ref().is_some_and(|o| *o != event.owner_id) {
                        return true;
                    }
                    // Full: this one fell behind; dropping its queue sends
                    // it to the log, where it catches up on its own.
                    s.queue.try_send(event.clone()).is_ok()
                });
                let removed = before - list.len();
                if list.is_empty() {
                    registry.roots.remove(&event.root_execution_id);
                }
                registry.subscribers -= removed;
                reached = event.position;
            }
            registry.position = Some(last);
            if !full {
                return Ok(batch.pending);
            }
        }
    }

    /// The events with their executions as they are now, read from the
    /// primary by id (one statement, one index probe per execution).
    pub(crate) async fn with_current_rows(
        &self,
        events: Vec<LoggedEvent>,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e.kind != EventKind::Deleted)
            .map(|e| e.execution_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        let rows: HashMap<String, Arc<Execution>> = self
            .get_many_on(&self.db, &ids, &Scope::All)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        Ok(events
            .into_iter()
            .map(|mut event| {
                if event.kind != EventKind::Deleted {
                    event.execution = rows.get(&event.execution_id).cloned();
                }
                event
            })
            .collect())
    }

    /// PostgreSQL only (a no-op on SQLite): wakes other execstore processes
    /// on the same database when this one writes, and this one when they
    /// do. Returns once this process is listening.
    pub async fn relay_events_across_processes(&self, database_url: &str) -> StoreResult<()> {
        use sea_orm::sqlx::postgres::PgListener;
        if self.backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let connect_error = |e| sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e));
        let mut listener = PgListener::connect(database_url)
            .await
            .map_err(connect_error)?;
        listener.listen(CHANNEL).await.map_err(connect_error)?;
        let (tx, rx) = mpsc::unbounded_channel();
        if self.events.0.relay.set(tx).is_err() {
            return Ok(()); // already relaying
        }
        tokio::spawn(notify_loop(
            database_url.to_owned(),
            self.events.clone(),
            rx,
        ));
        tokio::spawn(listen_loop(self.events.clone(), listener));
        Ok(())
    }
}

/// One subscriber's stream: replays from the log, then follows live.
struct Follower {
    store: ExecutionStore,
    root: String,
    owner: Option<String>,
    /// The last event handed out (or the cursor resumed from).
    last: Option<Position>,
    /// Replaying the log up to here before following live.
    replay_to: Option<Position>,
    live: Option<mpsc::Receiver<Arc<LoggedEvent>>>,
    /// Events committed before a "from now" subscriber joined that live
    /// delivery will still bring: skipped.
    past: std::collections::HashSet<Position>,
    id: u64,
    ready: VecDeque<Arc<LoggedEvent>>,
    ended: bool,
}

impl Follower {
    async fn next(&mut self) -> Option<StoreResult<Arc<LoggedEvent>>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.live.is_none() {
                if let Err(err) = self.join().await {
                    return Some(Err(self.end(err)));
                }
            }
            if let (Some(to), Some(from)) = (self.replay_to, self.last) {
                let page = self
                    .store
                    .root_events(&self.root, self.owner.as_deref(), from, to, BATCH)
                    .await;
                match page {
                    Err(err) => return Some(Err(self.end(err))),
                    Ok(page) => {
                        if (page.len() as i64) < BATCH {
                            self.replay_to = None;
                        }
                        if let Some(event) = page.last() {
                            self.last = Some(event.position);
                        }
                        let past = &mut self.past;
                        self.ready.extend(
                            page.into_iter()
                                .filter(|e| !past.remove(&e.position))
                                .map(Arc::new),
                        );
                        continue;
                    }
                }
            }
            let live = self.live.as_mut()?;
            match live.recv().await {
                Some(event) if self.past.remove(&event.position) => continue,
                Some(event) if Some(event.position) > self.last => {
                    self.last = Some(event.position);
                    return Some(Ok(event));
                }
                Some(_) => continue, // replayed already
                // Fell behind (or the reader dropped it): back to the log.
                None => self.live = None,
            }
        }
    }

    /// (Re)joins the live fan-out; what lies between the last event handed
    /// out and where live delivery starts is replayed from the log.
    async fn join(&mut self) -> StoreResult<()> {
        // "From now": the events of this root already committed are the
        // past, not news; exactly those are skipped (a position bound would
        // not do: on PostgreSQL a transaction still running may commit below
        // it). They are looked up *before* joining, from a position no later
        // than where live delivery will start: an event committed between
        // the lookup and the join is delivered (the edge may repeat), and one
        // committed after the join is never taken for the past — as it was
        // when the lookup ran after the join and the join was slow.
        let past = match self.last {
            None => {
                let floor = self.store.live_position_floor().await?;
                Some(
                    self.store
                        .root_event_positions_after(&self.root, floor)
                        .await?,
                )
            }
            Some(_) => None,
        };
        let (receiver, id, start) = self.store.register(&self.root, self.owner.clone()).await?;
        self.live = Some(receiver);
        self.id = id;
        match self.last {
            None => {
                self.last = Some(start);
                self.past = past.unwrap_or_default();
            }
            Some(last) if last < start => {
                self.replay_to = Some(start);
                crate::metrics::event_replay();
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn end(&mut self, err: StoreError) -> StoreError {
        self.ended = true;
        err
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.live.is_some() {
            self.store.events.deregister(&self.root, self.id);
        }
    }
}

/// The log reader of this process: woken by writes (here, or NOTIFY from
/// elsewhere), and every `POLL` regardless; sooner again while committed
/// events wait behind a running transaction.
async fn read_log(store: ExecutionStore) {
    let mut retry: Option<Duration> = None;
    loop {
        let wait = retry.unwrap_or(POLL);
        tokio::select! {
            _ = store.events.0.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        retry = match store.deliver_new_events().await {
            Ok(true) => Some(
                retry
                    .map_or(Duration::from_millis(1), |d| d * 2)
                    .min(Duration::from_millis(100)),
            ),
            Ok(false) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the event log; retrying");
                Some(Duration::from_secs(1))
            }
        };
    }
}

/// Sends one NOTIFY for every burst of local writes, on a connection of
/// its own (a pooled one would be tested by sqlx each time it went back).
/// The payload names this process, which ignores its own echo, and says
/// when the burst requeued executions.
async fn notify_loop(database_url: String, events: EventBus, mut rx: mpsc::UnboundedReceiver<()>) {
    use sea_orm::sqlx::{Connection, PgConnection};
    let mut connection: Option<PgConnection> = None;
    while rx.recv().await.is_some() {
        while rx.try_recv().is_ok() {}
        if connection.is_none() {
            match PgConnection::connect(&database_url).await {
                Ok(c) => connection = Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, "could not wake other processes (they poll the log)");
                    continue;
                }
            }
        }
        let Some(c) = connection.as_mut() else {
            continue;
        };
        let mut payload = events.0.origin.clone();
        let requeued = events.0.requeue_unsent.swap(false, Ordering::SeqCst);
        if requeued {
            payload.push_str(REQUEUED);
        }
        let sent = sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&mut *c)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not wake other processes (they poll the log)");
            connection = None;
            if requeued {
                events.0.requeue_unsent.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Other processes' wake-ups: read the log now, and let waiting workers try.
async fn listen_loop(events: EventBus, mut listener: sea_orm::sqlx::postgres::PgListener) {
    loop {
        match listener.recv().await {
            Ok(notification) => {
                let payload = notification.payload();
                let (origin, requeued) = match payload.strip_suffix(REQUEUED) {
                    Some(origin) => (origin, true),
                    None => (payload, false),
                };
                if origin == events.0.origin {
                    continue;
                }
                if requeued {
                    events.requeued_elsewhere();
                } else {
                    events.signal_work();
                }
                events.0.wake.notify_one();
            }
            Err(err) => {
                // PgListener reconnects on the next recv; whatever was
                // written meanwhile is in the log: read it now.
                tracing::warn!(error = %err, "event listener lost its connection; reconnecting");
                events.0.wake.notify_one();
                events.requeued_elsewhere();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
