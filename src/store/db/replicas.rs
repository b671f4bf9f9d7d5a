//! Reads off PostgreSQL standbys (`DATABASE_READ_URL`), never staler than a
//! bound, with read-your-writes on request.
//!
//! A watcher samples the primary's WAL position every 100 ms and each
//! standby's replay position. A standby's lag is how long ago the primary
//! first wrote WAL the standby has not replayed yet: 0 when it has replayed
//! everything, however long the primary has been idle (a clock-based lag
//! such as `now() - pg_last_xact_replay_timestamp()` would grow on an idle
//! primary). Queries go to a standby that answers and lags at most
//! `EXECSTORE_MAX_REPLICA_LAG`; otherwise to the primary.
//!
//! Read-your-writes: a mutation's answer carries the primary's WAL position
//! after it (the consistency token); a query that sends it back is answered
//! by a standby that has replayed that far, by one that gets there within a
//! short bounded wait, or by the primary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

use super::connect::DbOptions;
use crate::store::sql::standby::{WAL_INSERTED, WAL_REPLAYED, WAL_WRITTEN};

/// How often the watcher samples positions.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The longest a query with a token waits for a standby to catch up.
const TOKEN_WAIT: Duration = Duration::from_millis(100);
/// A standby that does not answer this fast is taken out of rotation.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where one request's queries read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadRoute {
    Primary,
    /// The standby's index in `DATABASE_READ_URL`.
    Standby(usize),
}

impl ReadRoute {
    /// The metrics label: `primary`, `standby-0`, …
    pub fn label(&self) -> String {
        match self {
            ReadRoute::Primary => "primary".into(),
            ReadRoute::Standby(i) => format!("standby-{i}"),
        }
    }
}

/// The standbys and what the watcher knows of them. Cheap to clone.
#[derive(Clone)]
pub struct Standbys(Arc<Inner>);

struct Inner {
    standbys: Vec<Standby>,
    max_lag: Duration,
    /// The primary's written WAL position over the last while, oldest first.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    next: AtomicUsize,
    primary: Mutex<Option<DatabaseConnection>>,
}

struct Standby {
    db: DatabaseConnection,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    healthy: bool,
    replayed: u64,
    lag: Duration,
}

impl Standbys {
    /// Pools for the standbys at `urls`, opened lazily: a standby that is
    /// down at start is simply not used until it answers.
    pub fn connect(urls: &[String], options: &DbOptions, max_lag: Duration) -> Result<Self, DbErr> {
        use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
        use sea_orm::sqlx::ConnectOptions as _;
        let mut standbys = Vec::new();
        for url in urls {
            let connect = url
                .parse::<PgConnectOptions>()
                .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)))?
                .options([
                    (
                        "statement_timeout",
                        format!("{}", options.statement_timeout.as_millis()),
                    ),
                    // As on the primary (see `connect::open`).
                    ("jit", "off".to_owned()),
                ])
                .disable_statement_logging();
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(PROBE_TIMEOUT)
                .connect_lazy_with(connect);
            standbys.push(Standby {
                db: sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                state: Mutex::default(),
            });
        }
        Ok(Self(Arc::new(Inner {
            standbys,
            max_lag,
            samples: Mutex::default(),
            next: AtomicUsize::new(0),
            primary: Mutex::default(),
        })))
    }

    /// Starts the watcher (once).
    pub(crate) fn watch(&self, primary: DatabaseConnection) {
        let mut slot = lock(&self.0.primary);
        if slot.is_some() {
            return;
        }
        *slot = Some(primary.clone());
        tokio::spawn(watch_loop(self.0.clone(), primary));
    }

    /// The standby connection for a request's queries (None: the primary).
    /// `token`: the client's consistency token, if it sent one.
    pub async fn route(&self, token: Option<u64>) -> (ReadRoute, Option<DatabaseConnection>) {
        if let Some(i) = self.pick(token) {
            return (ReadRoute::Standby(i), Some(self.0.standbys[i].db.clone()));
        }
        if let Some(token) = token {
            // A short bounded wait for a standby to replay that far.
            let deadline = Instant::now() + TOKEN_WAIT;
            while self.any_healthy() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                for (i, standby) in self.0.standbys.iter().enumerate() {
                    let usable = {
                        let state = lock(&standby.state);
                        state.healthy && state.lag <= self.0.max_lag
                    };
                    if !usable {
                        continue;
                    }
                    if let Some((lsn, true)) = replayed(&standby.db).await {
                        let mut state = lock(&standby.state);
                        state.replayed = state.replayed.max(lsn);
                        if lsn >= token {
                            return (ReadRoute::Standby(i), Some(standby.db.clone()));
                        }
                    }
                }
            }
            crate::metrics::read_fallback("token");
        } else {
            crate::metrics::read_fallback(if self.any_healthy() { "lag" } else { "down" });
        }
        (ReadRoute::Primary, None)
    }

    /// A standby that answered its last probe, lags within the bound and
    /// (with a token) has replayed past it; round robin among those.
    fn pick(&self, token: Option<u64>) -> Option<usize> {
        let n = self.0.standbys.len();
        let start = self.0.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|k| (start + k) % n).find(|&i| {
            let state = *lock(&self.0.standbys[i].state);
            state.healthy
                && state.lag <= self.0.max_lag
                && token.is_none_or(|t| state.replayed >= t)
        })
    }

    fn any_healthy(&self) -> bool {
        self.0.standbys.iter().any(|s| lock(&s.state).healthy)
    }

    /// A read on this standby failed: out of rotation until the watcher
    /// sees it answer again.
    pub fn mark_failed(&self, route: &ReadRoute) {
        if let ReadRoute::Standby(i) = route {
            if let Some(standby) = self.0.standbys.get(*i) {
                lock(&standby.state).healthy = false;
            }
            crate::metrics::read_fallback("error");
        }
    }

    /// The consistency token for what the primary has committed so far.
    pub async fn token(&self) -> Option<u64> {
        let primary = lock(&self.0.primary).clone()?;
        position(&primary, WAL_INSERTED).await
    }

    /// Each standby's lag as last measured, `None` while it is down.
    pub fn lags(&self) -> Vec<(String, Option<Duration>)> {
        self.0
            .standbys
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let state = *lock(&s.state);
                (
                    ReadRoute::Standby(i).label(),
                    state.healthy.then_some(state.lag),
                )
            })
            .collect()
    }
}

/// The token as clients carry it (hex).
pub fn encode_token(lsn: u64) -> String {
    format!("{lsn:X}")
}

pub fn decode_token(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim(), 16).ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn position(db: &DatabaseConnection, sql: &str) -> Option<u64> {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await
        .ok()??;
    row.try_get::<i64>("", "lsn").ok().map(|n| n.max(0) as u64)
}

/// A standby's replayed position, and whether it is still a standby.
async fn replayed(db: &DatabaseConnection) -> Option<(u64, bool)> {
    let probe = async {
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                WAL_REPLAYED,
            ))
            .await
            .ok()??;
        let lsn: Option<i64> = row.try_get("", "lsn").ok()?;
        let standby: bool = row.try_get("", "standby").ok()?;
        Some((lsn.unwrap_or(0).max(0) as u64, standby))
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe).await.ok()?
}

/// How far behind a standby at `replayed` is: since when the primary has
/// had WAL the standby has not replayed (0 when it has it all).
fn lag(samples: &VecDeque<(Instant, u64)>, replayed: u64, now: Instant) -> Duration {
    samples
        .iter()
        .find(|(_, written)| *written > replayed)
        .map_or(Duration::ZERO, |(at, _)| now.duration_since(*at))
}

async fn watch_loop(inner: Arc<Inner>, primary: DatabaseConnection) {
    let keep = inner.max_lag * 2 + Duration::from_secs(1);
    loop {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let now = Instant::now();
        if let Some(written) = position(&primary, WAL_WRITTEN).await {
            let mut samples = lock(&inner.samples);
            // Only changes matter: the first time each position was seen.
            if samples.back().is_none_or(|(_, last)| *last != written) {
                samples.push_back((now, written));
            }
            while samples.len() > 1
                && samples
                    .front()
                    .is_some_and(|(at, _)| now.duration_since(*at) > keep)
            {
                samples.pop_front();
            }
        }
        for (i, standby) in inner.standbys.iter().enumerate() {
            let probe = replayed(&standby.db).await;
            let mut state = lock(&standby.state);
            match probe {
                // A promoted server is no longer our standby.
                Some((lsn, true)) => {
                    state.healthy = true;
                    state.replayed = lsn;
                    state.lag = lag(&lock(&inner.samples), lsn, now);
                }
                _ => state.healthy = false,
            }
            crate::metrics::standby_lag(
                &ReadRoute::Standby(i).label(),
                state.healthy.then_some(state.lag),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_zero_when_caught_up_however_old_the_last_write() {
        let t0 = Instant::now();
        let samples: VecDeque<_> = [(t0, 100), (t0 + Duration::from_secs(1), 200)].into();
        let later = t0 + Duration::from_secs(60);
        assert_eq!(lag(&samples, 200, later), Duration::ZERO);
        assert_eq!(lag(&samples, 150, later), Duration::from_secs(59));
        assert_eq!(lag(&samples, 50, later), Duration::from_secs(60));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(0x016B_3748)), Some(0x016B_3748));
        assert_eq!(decode_token("zz"), None);
    }
}
