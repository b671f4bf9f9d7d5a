//! The event log (table `execution_events`): what live subscriptions read.
//!
//! Every change of an execution appends one row in the same transaction as
//! the change (inserts and updates by triggers, deletions by
//! `ExecutionStore::delete`; see migrations 000005 and, for PostgreSQL's
//! per-statement triggers, 000008). A row's position
//! `(tx, seq)` orders the log:
//!
//! - **PostgreSQL**: `tx` is the id of the writing transaction. A reader
//!   reads only events with `tx` below the oldest transaction still running
//!   (`pg_snapshot_xmin` of the reading statement's own snapshot). Every
//!   event committed later belongs to a transaction that was running then,
//!   so its `tx`, hence its position, is above everything already read: a
//!   reader is never owed an event behind a position it has passed. (A bare
//!   sequence does not give that: numbers are drawn in statement order,
//!   transactions commit in another.)
//! - **SQLite**: one writer at a time, so `seq` is commit order; `tx` is 0.
//!
//! The janitor deletes a prefix of the log (events older than the retention)
//! and records the last position it deleted; a reader whose cursor is before
//! it may have lost events, and is told so (`StoreError::EventsExpired`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};

use super::group_commit::in_transaction;
use super::sql::statement;
use super::{Execution, ExecutionStore, StoreError, StoreResult};

/// Where an event sits in the log; events are delivered in this order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx: i64,
    pub seq: i64,
}

const CURSOR_PREFIX: &str = "e1:";

impl Position {
    /// The opaque cursor clients send back as `after`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{}:{}", self.tx, self.seq))
    }

    pub fn decode(text: &str) -> StoreResult<Self> {
        let malformed = || StoreError::invalid("after", "malformed event cursor");
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| malformed())?;
        let raw = String::from_utf8(bytes).map_err(|_| malformed())?;
        let (tx, seq) = raw
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .ok_or_else(malformed)?;
        let position = Position {
            tx: tx.parse().map_err(|_| malformed())?,
            seq: seq.parse().map_err(|_| malformed())?,
        };
        if position.tx < 0 || position.seq < 0 {
            return Err(malformed());
        }
        Ok(position)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

impl EventKind {
    fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "created" => Ok(Self::Created),
            "updated" => Ok(Self::Updated),
            "deleted" => Ok(Self::Deleted),
            other => Err(StoreError::Database(sea_orm::DbErr::Custom(format!(
                "unknown event kind {other:?} in the event log"
            )))),
        }
    }
}

/// One event of the log, with the execution as it is when the event is
/// read (at least as new as the change; `None` for a deletion, or when the
/// execution was deleted since — its DELETED event follows).
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    pub position: Position,
    pub kind: EventKind,
    pub execution_id: String,
    pub root_execution_id: String,
    pub owner_id: String,
    pub execution: Option<std::sync::Arc<Execution>>,
}

impl LoggedEvent {
    pub fn cursor(&self) -> String {
        self.position.encode()
    }
}

/// Events after the reader's position, in log order.
pub(crate) struct TailBatch {
    pub events: Vec<LoggedEvent>,
    /// Committed events exist that are not readable yet (an older
    /// transaction is still running): read again soon.
    pub pending: bool,
}

/// The log's extent, for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventLogStats {
    /// Events retained, approximately (the span of sequence numbers from
    /// the first to the last event in log order).
    pub events: i64,
    /// When the oldest retained event was written (ms since the epoch).
    pub oldest_logged_at_ms: Option<i64>,
}

// The statements, whole, per backend. `$n` placeholders in bind order.

/// The head of the log: a position after every event readable now.
const PG_HEAD: &str =
    "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS tx, CAST(0 AS BIGINT) AS seq";
/// (Never below the prune mark: after the janitor emptied the log, MAX(seq)
/// alone would fall back to 0 and every cursor from it would be "expired".)
const SQLITE_HEAD: &str =
    "SELECT 0 AS tx, MAX(COALESCE((SELECT MAX(seq) FROM execution_events), 0), \
     (SELECT pruned_seq FROM event_log_state WHERE id = 1)) AS seq";

/// Up to $3 events after ($1, $2), readable now, with whether committed
/// events wait behind a running transaction.
const PG_TAIL: &str = "\
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id,
       EXISTS (SELECT 1 FROM execution_events p WHERE p.tx >= v.xmin) AS pending
FROM (SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS xmin) v
LEFT JOIN LATERAL (
    SELECT * FROM execution_events
    WHERE (tx, seq) > ($1, $2) AND tx < v.xmin
    ORDER BY tx, seq
    LIMIT $3
) e ON true
ORDER BY e.tx, e.seq";
const SQLITE_TAIL: &str = "\
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id, 0 AS pending
FROM execution_events e
WHERE e.tx = $1 AND e.seq > $2
ORDER BY e.seq
LIMIT $3";

/// A root's events in (($1, $2), ($3, $4)], at most $5, only of owner $6
/// when $6 is not null. One range of the root index: the redundant bounds on
/// `tx` alone keep the planner on it. (The rows are read apart, by id: a
/// join here let PostgreSQL's generic plan hash the whole table per page.)
const PG_ROOT_EVENTS: &str = "\
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id, false AS pending
FROM execution_events e
WHERE e.root_execution_id = $7
  AND e.tx >= $1 AND e.tx <= $3
  AND (e.tx, e.seq) > ($1, $2) AND (e.tx, e.seq) <= ($3, $4)
  AND ($6 IS NULL OR e.owner_id = $6)
ORDER BY e.tx, e.seq
LIMIT $5";
const SQLITE_ROOT_EVENTS: &str = "\
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id, 0 AS pending
FROM execution_events e
WHERE e.root_execution_id = $7
  AND e.tx = $1 AND e.seq > $2 AND e.tx = $3 AND e.seq <= $4
  AND ($6 IS NULL OR e.owner_id = $6)
ORDER BY e.seq
LIMIT $5";

/// Positions of a root's committed events after ($1, $2).
const PG_ROOT_POSITIONS: &str = "\
SELECT tx, seq FROM execution_events
WHERE root_execution_id = $3 AND tx >= $1 AND (tx, seq) > ($1, $2)";
const SQLITE_ROOT_POSITIONS: &str = "\
SELECT tx, seq FROM execution_events
WHERE root_execution_id = $3 AND tx = $1 AND seq > $2";

/// The last position the janitor deleted.
const PRUNED: &str = "SELECT pruned_tx AS tx, pruned_seq AS seq FROM event_log_state WHERE id = 1";

/// The oldest $1 events, readable now, for the janitor to cut a prefix of.
const PG_OLDEST: &str = "\
SELECT tx, seq, logged_at_ms FROM execution_events
WHERE tx < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)
ORDER BY tx, seq
LIMIT $1";
const SQLITE_OLDEST: &str = "\
SELECT tx, seq, logged_at_ms FROM execution_events ORDER BY tx, seq LIMIT $1";

/// Deletes the log up to and including ($1, $2) and records it.
const PG_PRUNE: &str = "DELETE FROM execution_events WHERE (tx, seq) <= ($1, $2)";
const SQLITE_PRUNE: &str = "DELETE FROM execution_events WHERE tx = $1 AND seq <= $2";
const RECORD_PRUNED: &str =
    "UPDATE event_log_state SET pruned_tx = $1, pruned_seq = $2 WHERE id = 1";

/// One janitor at a time across processes on PostgreSQL: the others skip
/// the round (a transaction-scoped advisory lock; the key is arbitrary).
const PG_JANITOR_LOCK: &str = "SELECT pg_try_advisory_xact_lock(7274851023) AS locked";

const PG_STATS: &str = "\
SELECT (SELECT seq FROM execution_events ORDER BY tx, seq LIMIT 1) AS first_seq,
       (SELECT logged_at_ms FROM execution_events ORDER BY tx, seq LIMIT 1) AS first_at,
       (SELECT seq FROM execution_events ORDER BY tx DESC, seq DESC LIMIT 1) AS last_seq";
const SQLITE_STATS: &str = "\
SELECT (SELECT MIN(seq) FROM execution_events) AS first_seq,
       (SELECT logged_at_ms FROM execution_events ORDER BY seq LIMIT 1) AS first_at,
       (SELECT MAX(seq) FROM execution_events) AS last_seq";

#[derive(FromQueryResult)]
struct PositionRow {
    tx: i64,
    seq: i64,
}

impl From<PositionRow> for Position {
    fn from(row: PositionRow) -> Self {
        Position {
            tx: row.tx,
            seq: row.seq,
        }
    }
}

#[derive(FromQueryResult)]
struct TailRow {
    tx: Option<i64>,
    seq: Option<i64>,
    kind: Option<String>,
    execution_id: Option<String>,
    root_execution_id: Option<String>,
    owner_id: Option<String>,
    pending: bool,
}

impl TryFrom<TailRow> for LoggedEvent {
    type Error = StoreError;

    fn try_from(row: TailRow) -> StoreResult<Self> {
        let missing = || {
            StoreError::Database(sea_orm::DbErr::Custom(
                "an event row without its columns".into(),
            ))
        };
        Ok(LoggedEvent {
            position: Position {
                tx: row.tx.ok_or_else(missing)?,
                seq: row.seq.ok_or_else(missing)?,
            },
            kind: EventKind::parse(&row.kind.ok_or_else(missing)?)?,
            execution_id: row.execution_id.ok_or_else(missing)?,
            root_execution_id: row.root_execution_id.ok_or_else(missing)?,
            owner_id: row.owner_id.ok_or_else(missing)?,
            execution: None,
        })
    }
}

#[derive(FromQueryResult)]
struct OldestRow {
    tx: i64,
    seq: i64,
    logged_at_ms: i64,
}

fn pick<'a>(backend: DbBackend, postgres: &'a str, sqlite: &'a str) -> &'a str {
    match backend {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    }
}

impl ExecutionStore {
    /// A position after every event readable now.
    pub(crate) async fn event_log_head(&self) -> StoreResult<Position> {
        let backend = self.backend();
        let text = pick(backend, PG_HEAD, SQLITE_HEAD);
        let row = PositionRow::find_by_statement(statement(backend, text, vec![]))
            .one(&self.db)
            .await?;
        Ok(row.map(Position::from).unwrap_or_default())
    }

    /// Up to `limit` events after `after`, in log order (without rows).
    pub(crate) async fn event_log_tail(
        &self,
        after: Position,
        limit: i64,
    ) -> StoreResult<TailBatch> {
        let backend = self.backend();
        let text = pick(backend, PG_TAIL, SQLITE_TAIL);
        let rows = TailRow::find_by_statement(statement(
            backend,
            text,
            vec![after.tx.into(), after.seq.into(), limit.into()],
        ))
        .all(&self.db)
        .await?;
        let pending = rows.first().is_some_and(|r| r.pending);
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(tx), Some(seq), Some(kind), Some(id), Some(root), Some(owner)) = (
                row.tx,
                row.seq,
                row.kind,
                row.execution_id,
                row.root_execution_id,
                row.owner_id,
            ) else {
                continue; // the empty row that carries `pending`
            };
            events.push(LoggedEvent {
                position: Position { tx, seq },
                kind: EventKind::parse(&kind)?,
                execution_id: id,
                root_execution_id: root,
                owner_id: owner,
                execution: None,
            });
        }
        Ok(TailBatch { events, pending })
    }

    /// A root's events after `after` up to and including `upto`, at most
    /// `limit`, with their executions; only `owner`'s when given. Refused
    /// with `EventsExpired` when the janitor has pruned past `after`.
    pub(crate) async fn root_events(
        &self,
        root: &str,
        owner: Option<&str>,
        after: Position,
        upto: Position,
        limit: i64,
    ) -> StoreResult<Vec<LoggedEvent>> {
        let backend = self.backend();
        let text = pick(backend, PG_ROOT_EVENTS, SQLITE_ROOT_EVENTS);
        let rows = TailRow::find_by_statement(statement(
            backend,
            text,
            vec![
                after.tx.into(),
                after.seq.into(),
                upto.tx.into(),
                upto.seq.into(),
                limit.into(),
                owner.map(str::to_owned).into(),
                root.to_owned().into(),
            ],
        ))
        .all(&self.db)
        .await?;
        // Read after the events: the janitor only moves forward, so a mark
        // still at or before `after` now was so while they were read.
        if self.event_log_pruned().await? > after {
            return Err(StoreError::EventsExpired);
        }
        let events = rows
            .into_iter()
            .map(LoggedEvent::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        self.with_current_rows(events).await
    }

    /// The positions of `root`'s events after `after` committed now.
    pub(crate) async fn root_event_positions_after(
        &self,
        root: &str,
        after: Position,
    ) -> StoreResult<std::collections::HashSet<Position>> {
        let backend = self.backend();
        let text = pick(backend, PG_ROOT_POSITIONS, SQLITE_ROOT_POSITIONS);
        Ok(PositionRow::find_by_statement(statement(
            backend,
            text,
            vec![after.tx.into(), after.seq.into(), root.to_owned().into()],
        ))
        .all(&self.db)
        .await?
        .into_iter()
        .map(Position::from)
        .collect())
    }

    /// The last position the janitor deleted.
    pub(crate) async fn event_log_pruned(&self) -> StoreResult<Position> {
        let row = PositionRow::find_by_statement(statement(self.backend(), PRUNED, vec![]))
            .one(&self.db)
            .await?;
        Ok(row.map(Position::from).unwrap_or_default())
    }

    /// Deletes, in batches of `batch`, the events logged before
    /// `horizon_ms` (ms since the epoch), oldest first and only as a prefix
    /// of the log. Returns how many went; 0 when another process's janitor
    /// holds the turn (PostgreSQL).
    pub async fn prune_event_log(&self, horizon_ms: i64, batch: i64) -> StoreResult<u64> {
        let mut deleted = 0;
        loop {
            let (n, more) = self.prune_event_log_batch(horizon_ms, batch).await?;
            deleted += n;
            if !more {
                return Ok(deleted);
            }
        }
    }

    /// One batch, in one short transaction: (deleted, maybe more to do).
    /// SQLite: a write of the commit groups, so that the janitor gets its
    /// turn under any write load (a transaction of its own would wait for
    /// SQLite's lock against a writer that takes it back at once).
    async fn prune_event_log_batch(&self, horizon_ms: i64, batch: i64) -> StoreResult<(u64, bool)> {
        use sea_orm::TransactionTrait;
        let backend = self.backend();
        if backend != DbBackend::Postgres {
            return self
                .write(move |w| {
                    Box::pin(async move {
                        w.transaction(|txn| Box::pin(prune_in(txn, backend, horizon_ms, batch)))
                            .await
                    })
                })
                .await;
        }
        let txn = self.db.begin().await?;
        match take_turn(txn, PG_JANITOR_LOCK).await? {
            Some(txn) => {
                in_transaction(txn, |txn| {
                    Box::pin(prune_in(txn, backend, horizon_ms, batch))
                })
                .await
            }
            None => Ok((0, false)),
        }
    }

    /// How big and how old the log is (a few index reads).
    pub async fn event_log_stats(&self) -> StoreResult<EventLogStats> {
        let backend = self.backend();
        let row = self
            .db
            .query_one(statement(
                backend,
                pick(backend, PG_STATS, SQLITE_STATS),
                vec![],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(EventLogStats::default());
        };
        let first: Option<i64> = row.try_get("", "first_seq")?;
        let last: Option<i64> = row.try_get("", "last_seq")?;
        Ok(EventLogStats {
            events: match (first, last) {
                (Some(first), Some(last)) => (last - first + 1).max(0),
                _ => 0,
            },
            oldest_logged_at_ms: row.try_get("", "first_at")?,
        })
    }
}

/// PostgreSQL: `txn` with the transaction-scoped advisory lock that `lock`
/// (a `SELECT pg_try_advisory_xact_lock(…) AS locked`) takes, or `None`
/// (the transaction rolled back) while another process holds it: one
/// janitor round at a time across the servers of a database.
pub(crate) async fn take_turn(
    txn: sea_orm::DatabaseTransaction,
    lock: &str,
) -> StoreResult<Option<sea_orm::DatabaseTransaction>> {
    let locked = txn
        .query_one(statement(txn.get_database_backend(), lock, vec![]))
        .await?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false);
    if locked {
        Ok(Some(txn))
    } else {
        txn.rollback().await?;
        Ok(None)
    }
}

/// Prunes up to `batch` events logged before `horizon_ms`, as a prefix of
/// the log, in `txn`: (deleted, maybe more to do).
async fn prune_in(
    txn: &sea_orm::DatabaseTransaction,
    backend: DbBackend,
    horizon_ms: i64,
    batch: i64,
) -> StoreResult<(u64, bool)> {
    let oldest = OldestRow::find_by_statement(statement(
        backend,
        pick(backend, PG_OLDEST, SQLITE_OLDEST),
        vec![batch.into()],
    ))
    .all(txn)
    .await?;
    let expired: Vec<&OldestRow> = oldest
        .iter()
        .take_while(|row| row.logged_at_ms < horizon_ms)
        .collect();
    let Some(last) = expired.last() else {
        return Ok((0, false));
    };
    let position = vec![last.tx.into(), last.seq.into()];
    let deleted = txn
        .execute(statement(
            backend,
            pick(backend, PG_PRUNE, SQLITE_PRUNE),
            position.clone(),
        ))
        .await?
        .rows_affected();
    txn.execute(statement(backend, RECORD_PRUNED, position))
        .await?;
    let more = expired.len() == oldest.len() && oldest.len() as i64 == batch;
    Ok((deleted, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let p = Position { tx: 812, seq: 44 };
        assert_eq!(Position::decode(&p.encode()).unwrap(), p);
        for bad in [
            "",
            "!!",
            "Zm9v",
            &URL_SAFE_NO_PAD.encode("e1:1"),
            &URL_SAFE_NO_PAD.encode("e1:-1:2"),
        ] {
            assert!(Position::decode(bad).is_err(), "{bad}");
        }
    }
}
