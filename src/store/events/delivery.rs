//! Live delivery of the event log to subscribers.
//!
//! Nothing is published from memory: every process reads the log (see
//! `log`) from its own position and hands each event to the subscribers of
//! that event's root only. A write only *wakes* the reader: at once in the
//! writing process, through a NOTIFY in the others (PostgreSQL, `relay`), and
//! a slow poll catches anything a lost wake-up missed. So a dropped LISTEN
//! connection, a restart, or a crash between commit and wake-up delays
//! events; it never loses them.
//!
//! A subscriber has a bounded queue. One that falls behind is dropped from
//! the live fan-out and catches up by reading its root's events from the log
//! (where it left off), then rejoins: it never skips, and never holds the
//! others back. A subscriber that resumes from a cursor does the same from
//! that cursor. Replay and live meet at the position the reader had reached
//! when the subscriber joined: no gap, no repeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

use super::log::{EventKind, LoggedEvent, Position};
use super::{Events, Subscriber};
use crate::store::db::{run, Scope, StoreError, StoreResult};
use entity::execution::Model as Execution;

/// Events one subscriber may have waiting before it is switched to reading
/// the log.
pub const SUBSCRIBER_QUEUE: usize = 1024;
/// Events read from the log per statement (live reading and replays).
const BATCH: i64 = 1000;
/// The live reader looks at the log this often even without a wake-up.
const POLL: Duration = Duration::from_millis(500);

impl Events {
    /// A root's events as a stream: after `after` when given (first what
    /// the log holds, then live), else live from now. Ends with
    /// `EventsExpired` when the log no longer holds what follows the cursor.
    /// Only `scope`'s events (a user's own executions).
    pub fn follow(
        &self,
        root: String,
        scope: &Scope,
        after: Option<Position>,
    ) -> impl Stream<Item = StoreResult<Arc<LoggedEvent>>> + Send + 'static {
        let follower = Follower {
            events: self.clone(),
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
    pub async fn cursor(&self) -> StoreResult<Position> {
        self.log_head().await
    }

    /// A position live delivery cannot start before: the reader's (it only
    /// moves forward), or the log's head while nobody listens (the next
    /// subscriber brings the reader there or later).
    async fn live_position_floor(&self) -> StoreResult<Position> {
        let position = {
            let registry = self.registry();
            (registry.subscribers > 0)
                .then_some(registry.position)
                .flatten()
        };
        match position {
            Some(position) => Ok(position),
            None => self.log_head().await,
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
        let head = match self.has_subscribers() {
            false => Some(self.log_head().await?),
            true => None,
        };
        let (queue, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut registry = self.registry();
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
        if !self.delivery.reading.swap(true, Ordering::AcqRel) {
            tokio::spawn(read_log(self.clone()));
        }
    }

    /// Hands every readable event after the reader's position to the
    /// subscribers of its root. Returns whether committed events wait
    /// behind a running transaction (read again soon).
    async fn deliver_new_events(&self) -> StoreResult<bool> {
        loop {
            let (from, idle) = {
                let registry = self.registry();
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
            let batch = self.log_tail(from, BATCH).await?;
            let Some(last) = batch.events.last().map(|e| e.position) else {
                return Ok(batch.pending);
            };
            let full = batch.events.len() as i64 == BATCH;
            crate::metrics::events_read(batch.events.len());
            // Rows are read only for the roots someone follows now; a root
            // that gains its first subscriber meanwhile is caught below.
            let followed: std::collections::HashSet<String> =
                self.registry().roots.keys().cloned().collect();
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
            let mut registry = self.registry();
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
        let by_ids = self.db.stmt(
            self.db.sql().executions_by_ids,
            [run::json_list(&ids).into(), Scope::All.param()],
        );
        let rows: HashMap<String, Arc<Execution>> =
            run::executions::<_, Execution>(self.db.primary(), by_ids)
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
}

/// One subscriber's stream: replays from the log, then follows live.
struct Follower {
    events: Events,
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
                    .events
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
                let floor = self.events.live_position_floor().await?;
                Some(self.events.root_positions_after(&self.root, floor).await?)
            }
            Some(_) => None,
        };
        let (receiver, id, start) = self.events.register(&self.root, self.owner.clone()).await?;
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
            self.events.deregister(&self.root, self.id);
        }
    }
}

/// The log reader of this process: woken by writes (here, or NOTIFY from
/// elsewhere), and every `POLL` regardless; sooner again while committed
/// events wait behind a running transaction.
async fn read_log(events: Events) {
    let mut retry: Option<Duration> = None;
    loop {
        let wait = retry.unwrap_or(POLL);
        tokio::select! {
            _ = events.db.bus().woken() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        retry = match events.deliver_new_events().await {
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
