//! The execution store as its callers hold it: one handle, and the parts
//! that work through it (runs, the queue, reads, events).

use sea_orm::{DatabaseConnection, DbBackend};

use crate::store::db::{
    decode_token, encode_token, Db, EventBus, PoolStats, ReadRoute, RetryPolicy, Standbys,
    StoreResult,
};
use crate::store::events::Events;
use crate::store::janitor::Janitor;
use crate::store::queue::Queue;
use crate::store::reads::Reads;
use crate::store::runs::Runs;

/// Cheap to clone: the connections are pools, the parts share the handle.
#[derive(Clone)]
pub struct ExecutionStore {
    db: Db,
    runs: Runs,
    queue: Queue,
    reads: Reads,
    events: Events,
}

/// Where one request's reads went, and whether they must be answered again
/// from the primary.
pub struct RoutedReads {
    /// The store the request reads through.
    pub store: ExecutionStore,
    pub route: ReadRoute,
}

impl RoutedReads {
    /// A read failed on the standby (down, restarting, a conflict with
    /// recovery): the request must run again on the primary. The standby
    /// leaves the rotation until its watcher sees it answer.
    pub fn failed(&self) -> bool {
        let failed = self
            .store
            .db
            .standby_read()
            .is_some_and(|(_, failed)| failed);
        if failed {
            if let Some(standbys) = self.store.db.standbys() {
                standbys.mark_failed(&self.route);
            }
        }
        failed
    }
}

impl ExecutionStore {
    pub fn new(connection: DatabaseConnection) -> Self {
        Self::of(Db::new(connection, EventBus::new()))
    }

    fn of(db: Db) -> Self {
        Self {
            runs: Runs::new(db.clone()),
            queue: Queue::new(db.clone()),
            reads: Reads::new(db.clone()),
            events: Events::new(db.clone()),
            db,
        }
    }

    /// The same parts over another handle (the events keep their
    /// subscribers: they read the log on the primary whatever the handle).
    fn over(&self, db: Db) -> Self {
        Self {
            runs: Runs::new(db.clone()),
            queue: Queue::new(db.clone()),
            reads: Reads::new(db.clone()),
            events: self.events.clone(),
            db,
        }
    }

    /// Adds PostgreSQL standbys that queries may read from; starts watching
    /// their lag.
    pub fn with_standbys(self, standbys: Standbys) -> Self {
        let db = self.db.clone().with_standbys(standbys);
        self.over(db)
    }

    /// With the retry policy of the settings (`EXECSTORE_RETRY_*`).
    pub fn with_retry_policy(self, policy: RetryPolicy) -> Self {
        let db = self.db.clone().with_retry_policy(policy);
        self.over(db)
    }

    pub fn standbys(&self) -> Option<&Standbys> {
        self.db.standbys()
    }

    /// The store one request's queries read through: a standby that lags
    /// within the bound (and, given the consistency token of the client's
    /// last write, has replayed it), or the primary. Writes always go to the
    /// primary. After the request, `RoutedReads::failed` says whether a read
    /// failed on the standby.
    pub async fn route_reads(&self, token: Option<&str>) -> RoutedReads {
        let Some(standbys) = self.db.standbys() else {
            return RoutedReads {
                store: self.clone(),
                route: ReadRoute::Primary,
            };
        };
        let (route, connection) = standbys.route(token.and_then(decode_token)).await;
        let store = match connection {
            Some(connection) => self.over(self.db.reading_from(connection, route.clone())),
            None => self.clone(),
        };
        RoutedReads { store, route }
    }

    /// The same store reading from the primary.
    pub fn on_primary(&self) -> Self {
        self.over(self.db.on_primary())
    }

    /// The consistency token of what the primary has committed so far (with
    /// standbys): a query that sends it back reads its own writes.
    pub async fn consistency_token(&self) -> Option<String> {
        Some(encode_token(self.db.standbys()?.token().await?))
    }

    /// Whether `text` is a consistency token this store could have issued.
    pub fn is_token(text: &str) -> bool {
        decode_token(text).is_some()
    }

    /// The same store, trusting a queue's head for `ttl` after a pull from
    /// its start (`db::heads`) instead of 250 ms; with heads of its own.
    /// For tests that must not depend on how fast they run.
    #[doc(hidden)]
    pub fn with_queue_head_ttl(&self, ttl: std::time::Duration) -> Self {
        self.over(self.db.with_queue_head_ttl(ttl))
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn janitor(&self) -> Janitor {
        Janitor::new(self.events.clone(), self.runs.clone(), self.queue.clone())
    }

    /// The wake-ups of this process.
    pub fn bus(&self) -> &EventBus {
        self.db.bus()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        self.db.primary()
    }

    pub fn backend(&self) -> DbBackend {
        self.db.backend()
    }

    /// Wakes other processes on the same PostgreSQL database when this one
    /// writes, and this one when they do (a no-op on SQLite).
    pub async fn relay_events_across_processes(&self, database_url: &str) -> StoreResult<()> {
        self.db.relay_across_processes(database_url).await
    }

    /// SQLite: how many commit groups were written and how many writes they
    /// held (`None` on PostgreSQL, or before the first write).
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        self.db.group_commit_stats()
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await
    }

    pub fn pool_stats(&self) -> PoolStats {
        self.db.pool_stats()
    }
}
