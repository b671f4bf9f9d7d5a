//! The event log (table `execution_events`): what live subscriptions read.
//!
//! Every change of an execution appends one row in the same transaction as
//! the change (inserts and updates by triggers, deletions by
//! `runs::delete`; see migrations 000005 and, for PostgreSQL's
//! per-statement triggers, 000008). A row's position `(tx, seq)` orders the
//! log:
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
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult};

use super::Events;
use crate::store::db::{run, StoreError, StoreResult};
use crate::store::sql::Statements;
use entity::execution::Model as Execution;

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

/// A row of `log_tail` or `root_events`. `log_tail` answers one row of
/// nulls that only carries `pending` when nothing is readable.
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

impl TailRow {
    /// The event, or `None` for the row that only carries `pending`.
    fn event(self) -> StoreResult<Option<LoggedEvent>> {
        let (Some(tx), Some(seq), Some(kind), Some(id), Some(root), Some(owner)) = (
            self.tx,
            self.seq,
            self.kind,
            self.execution_id,
            self.root_execution_id,
            self.owner_id,
        ) else {
            return Ok(None);
        };
        Ok(Some(LoggedEvent {
            position: Position { tx, seq },
            kind: EventKind::parse(&kind)?,
            execution_id: id,
            root_execution_id: root,
            owner_id: owner,
            execution: None,
        }))
    }
}

#[derive(FromQueryResult)]
struct OldestRow {
    tx: i64,
    seq: i64,
    logged_at_ms: i64,
}

impl Events {
    /// A position after every event readable now.
    pub(crate) async fn log_head(&self) -> StoreResult<Position> {
        let head = self.db.stmt(self.db.sql().log_head, []);
        let row: Option<PositionRow> = run::model(self.db.primary(), head).await?;
        Ok(row.map(Position::from).unwrap_or_default())
    }

    /// Up to `limit` events after `after`, in log order (without rows).
    pub(crate) async fn log_tail(&self, after: Position, limit: i64) -> StoreResult<TailBatch> {
        let tail = self.db.stmt(
            self.db.sql().log_tail,
            [after.tx.into(), after.seq.into(), limit.into()],
        );
        let rows: Vec<TailRow> = run::models(self.db.primary(), tail).await?;
        let pending = rows.first().is_some_and(|r| r.pending);
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.extend(row.event()?);
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
        let events = self.db.stmt(
            self.db.sql().root_events,
            [
                after.tx.into(),
                after.seq.into(),
                upto.tx.into(),
                upto.seq.into(),
                limit.into(),
                owner.map(str::to_owned).into(),
                root.to_owned().into(),
            ],
        );
        let rows: Vec<TailRow> = run::models(self.db.primary(), events).await?;
        // Read after the events: the janitor only moves forward, so a mark
        // still at or before `after` now was so while they were read.
        if self.log_pruned().await? > after {
            return Err(StoreError::EventsExpired);
        }
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.extend(row.event()?);
        }
        self.with_current_rows(events).await
    }

    /// The positions of `root`'s events after `after` committed now.
    pub(crate) async fn root_positions_after(
        &self,
        root: &str,
        after: Position,
    ) -> StoreResult<std::collections::HashSet<Position>> {
        let positions = self.db.stmt(
            self.db.sql().root_positions,
            [after.tx.into(), after.seq.into(), root.to_owned().into()],
        );
        let rows: Vec<PositionRow> = run::models(self.db.primary(), positions).await?;
        Ok(rows.into_iter().map(Position::from).collect())
    }

    /// The last position the janitor deleted.
    pub(crate) async fn log_pruned(&self) -> StoreResult<Position> {
        let pruned = self.db.stmt(self.db.sql().log_pruned, []);
        let row: Option<PositionRow> = run::model(self.db.primary(), pruned).await?;
        Ok(row.map(Position::from).unwrap_or_default())
    }

    /// Deletes, in batches of `batch`, the events logged before
    /// `horizon_ms` (ms since the epoch), oldest first and only as a prefix
    /// of the log. Returns how many went; 0 when another process's janitor
    /// holds the turn (PostgreSQL).
    pub async fn prune_log(&self, horizon_ms: i64, batch: i64) -> StoreResult<u64> {
        let mut deleted = 0;
        loop {
            // One batch, in one short transaction; on SQLite a write of the
            // commit groups, so that the janitor gets its turn under any
            // write load (a transaction of its own would wait for SQLite's
            // lock against a writer that takes it back at once).
            let sql = self.db.sql();
            let round = self
                .db
                .maintenance(sql.janitor_lock, None, move |txn| {
                    Box::pin(prune_in(txn, sql, horizon_ms, batch))
                })
                .await?;
            let Some((n, more)) = round else {
                return Ok(deleted);
            };
            deleted += n;
            if !more {
                return Ok(deleted);
            }
        }
    }

    /// How big and how old the log is (a few index reads).
    pub async fn log_stats(&self) -> StoreResult<EventLogStats> {
        let stats = self.db.stmt(self.db.sql().log_stats, []);
        let Some(row) = self.db.primary().query_one(stats).await? else {
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

/// Prunes up to `batch` events logged before `horizon_ms`, as a prefix of
/// the log, in `txn`: (deleted, maybe more to do).
async fn prune_in(
    txn: &DatabaseTransaction,
    sql: &'static Statements,
    horizon_ms: i64,
    batch: i64,
) -> StoreResult<(u64, bool)> {
    let backend = txn.get_database_backend();
    let oldest: Vec<OldestRow> =
        run::models(txn, run::statement(backend, sql.log_oldest, [batch.into()])).await?;
    let expired: Vec<&OldestRow> = oldest
        .iter()
        .take_while(|row| row.logged_at_ms < horizon_ms)
        .collect();
    let Some(last) = expired.last() else {
        return Ok((0, false));
    };
    let position = vec![last.tx.into(), last.seq.into()];
    let deleted = txn
        .execute(run::statement(backend, sql.log_prune, position.clone()))
        .await?
        .rows_affected();
    txn.execute(run::statement(backend, sql.log_record_pruned, position))
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
