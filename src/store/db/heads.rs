//! Where each flow's queue begins, as far as this process knows
//! (PostgreSQL): shared by every write that makes work (creates, releases,
//! retries) and the pulls that take it, so it lives with the handle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

/// An execution's place in the queue, in hand-out order: (−priority, due
/// time, id).
pub type QueueKey = (i32, DateTime<Utc>, String);

/// `execution`'s place in the queue.
pub(crate) fn queue_key(execution: &entity::execution::Model) -> QueueKey {
    (
        -execution.priority,
        execution.due_at(),
        execution.id.clone(),
    )
}

/// How long a queue's head is trusted after the pull that found it from
/// the start of the queue.
const HEAD_TTL: std::time::Duration = std::time::Duration::from_millis(250);

/// Where each flow's queue was last seen to begin (PostgreSQL), so that a
/// pull need not walk what earlier pulls took.
///
/// A claim leaves its row's old entry in the queue's index until vacuum
/// removes it, and those entries pile up at the head of the queue, where
/// every pull starts: after 26,000 claims of one flow, a limit-1 pull read
/// 154 index pages to find its row, and 8 workers pulled a fifth slower
/// than on a fresh flow (2,391 against 2,946 pulls/s, wrk). So a pull
/// starts after the first execution the previous pull of that flow took:
/// what came before it was taken, or held by another transaction, when
/// that pull ran. That holds until something may have put an older
/// execution back in the queue, so a head is forgotten
/// - when executions are requeued, here or in another process (released,
///   retried, a lapsed lease put back, a status set back to CREATED: the
///   event bus's `requeues` counter moved since the head was found);
/// - when this process creates (or updates) a CREATED execution that sorts
///   before it (`created`);
/// - `HEAD_TTL` after a pull last looked from the start, which bounds how
///   long an execution can wait behind newer ones when it came back some
///   other way (held by a transaction that then left it claimable, such as
///   a pull that failed; created by another process with an older stamp).
///   One pull then looks from the start; pulls that arrive while it runs
///   keep the old head (eight workers all reading from the start at each
///   expiry made a limit-1 drain spend an eighth of its database time on
///   those reads), for another TTL at most if that pull fails;
/// - and a pull that finds fewer than it asked for after the head looks
///   from the start at once, so it never comes back empty-handed while
///   older work is there.
pub(crate) struct QueueHeads {
    ttl: std::time::Duration,
    heads: std::sync::Mutex<HashMap<Option<String>, Head>>,
}

impl Default for QueueHeads {
    fn default() -> Self {
        Self::with_ttl(HEAD_TTL)
    }
}

/// Where a pull starts: after `key`, of the head found at `found_at`.
pub(crate) struct HeadStart {
    pub key: QueueKey,
    pub found_at: std::time::Instant,
}

struct Head {
    /// The event bus's `requeues` counter when it was found.
    requeues: u64,
    /// When a pull last looked from the start of the queue.
    scanned_at: std::time::Instant,
    /// When a pull was sent to look from the start again (the TTL ran out).
    refreshing: Option<std::time::Instant>,
    key: QueueKey,
}

impl QueueHeads {
    pub(crate) fn with_ttl(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            heads: std::sync::Mutex::default(),
        }
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<Option<String>, Head>> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a pull of `flow` may start, when the head is still good at
    /// `requeues`: the key to start after, and when the head was found (for
    /// `record`). When the head's TTL ran out, the first caller gets `None`
    /// and is the one pull to look from the start; the callers that come
    /// while it runs keep the old head, unless it has been gone a whole TTL
    /// (as a pull that failed would be).
    pub(crate) fn start_for(&self, flow: Option<&str>, requeues: u64) -> Option<HeadStart> {
        let mut heads = self.heads();
        let head = heads.get_mut(&flow.map(str::to_owned))?;
        if head.requeues != requeues {
            return None;
        }
        let start = HeadStart {
            key: head.key.clone(),
            found_at: head.scanned_at,
        };
        if head.scanned_at.elapsed() < self.ttl {
            return Some(start);
        }
        match head.refreshing {
            Some(at) if at.elapsed() < self.ttl => Some(start),
            _ => {
                head.refreshing = Some(std::time::Instant::now());
                None
            }
        }
    }

    /// A pull that began at `requeues` took the execution at `key` as its
    /// oldest; `found_at` names the head it started after (`HeadStart`),
    /// `None` when it looked from the start.
    pub(crate) fn record(
        &self,
        flow: Option<&str>,
        requeues: u64,
        found_at: Option<std::time::Instant>,
        key: QueueKey,
    ) {
        let mut heads = self.heads();
        let flow = flow.map(str::to_owned);
        match found_at {
            None => {
                if heads.len() >= MAX_HEADS {
                    // Flows nobody pulled lately.
                    let ttl = self.ttl;
                    heads.retain(|_, head| head.scanned_at.elapsed() < ttl);
                }
                let scanned_at = std::time::Instant::now();
                heads.insert(
                    flow,
                    Head {
                        requeues,
                        scanned_at,
                        refreshing: None,
                        key,
                    },
                );
            }
            Some(found_at) => {
                // Only forward, only while nothing was requeued since, and
                // only from the head this pull started after: a pull that
                // started after an expired head must not move a fresh one
                // past work the fresh one's pull left behind.
                if let Some(head) = heads.get_mut(&flow) {
                    if head.requeues == requeues && head.scanned_at == found_at && head.key < key {
                        head.key = key;
                    }
                }
            }
        }
    }

    /// This process wrote CREATED executions, the oldest at `oldest`:
    /// heads past it are forgotten (an upsert keeps an old stamp; a create
    /// stamped before a newer one was pulled can commit after it).
    pub(crate) fn created(&self, oldest: &QueueKey) {
        self.heads().retain(|_, head| head.key < *oldest);
    }
}

/// Flows whose heads are kept before stale ones are dropped.
const MAX_HEADS: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    /// When a head's TTL runs out, one pull looks from the start; the pulls
    /// that come while it runs keep the old head, a requeue still drops it
    /// for everyone, a pull that started after the old head cannot move the
    /// fresh one, and a refresh that never answers is retried after another
    /// TTL.
    #[test]
    fn one_pull_refreshes_an_expired_head() {
        let ttl = std::time::Duration::from_secs(3600);
        let heads = QueueHeads::with_ttl(ttl);
        let key = |id: &str| (0, DateTime::<Utc>::UNIX_EPOCH, id.to_owned());
        let flow = Some("f");
        let start = |requeues| heads.start_for(flow, requeues).map(|s| (s.key, s.found_at));
        heads.record(flow, 7, None, key("a"));
        let (fresh, found_a) = start(7).expect("fresh");
        assert_eq!(fresh, key("a"));
        assert_eq!(start(8), None, "requeued since");
        heads.record(flow, 7, Some(found_a), key("c"));
        assert_eq!(
            start(7).unwrap().0,
            key("c"),
            "a pull from the head moves it forward"
        );
        let long_ago = std::time::Instant::now().checked_sub(2 * ttl).unwrap();
        heads
            .heads()
            .get_mut(&Some("f".to_owned()))
            .unwrap()
            .scanned_at = long_ago;
        assert_eq!(start(7), None, "expired: this pull looks from the start");
        let (stale, found_stale) = start(7).expect("meanwhile the others keep the head");
        assert_eq!(stale, key("c"));
        assert_eq!(start(8), None, "but not past a requeue");
        heads.record(flow, 7, None, key("b"));
        heads.record(flow, 7, Some(found_stale), key("z"));
        assert_eq!(
            start(7).unwrap().0,
            key("b"),
            "a pull that started after the old head leaves the fresh one alone"
        );
        let mut all = heads.heads();
        let head = all.get_mut(&Some("f".to_owned())).unwrap();
        head.scanned_at = long_ago;
        head.refreshing = Some(long_ago);
        drop(all);
        assert_eq!(
            start(7),
            None,
            "a refresh that never answered is tried again"
        );
    }
}
