//! Reads: executions by id, trees, children, feeds (keyset pages), flows,
//! claims and recovery histories, statistics. Everything here reads through
//! the handle's read connection: the primary, or a standby chosen for the
//! request (a read that fails there says so; see `Db::standby_read`).

mod claims;
mod executions;
mod feeds;
mod flows;
mod stats;
mod trees;

use chrono::{DateTime, Utc};

use crate::store::db::Db;

pub use feeds::{RootExecution, RootFilter};
pub use flows::Flow;
pub use stats::{ExecutionStats, QueueDepth};
pub use trees::{tree_levels, ChildWindow};

/// Every read. Cheap to clone.
#[derive(Clone)]
pub struct Reads {
    db: Db,
}

impl Reads {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// One page of a newest-first feed.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// A page from rows read with `LIMIT first + 1`: the extra row only
    /// tells that there is a next page.
    pub(crate) fn cut(mut items: Vec<T>, first: i64, after_cursor: bool) -> Self {
        let has_next_page = items.len() as i64 > first;
        items.truncate(first as usize);
        Page {
            items,
            has_next_page,
            has_previous_page: after_cursor,
        }
    }

    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

/// A bound of a read that bounds nothing when absent: the rows a read may
/// return (`LIMIT $n`), one more than `max` when there is one, so that more
/// than `max` can be refused.
fn row_limit(max: Option<i64>) -> i64 {
    max.map_or(i64::MAX, |max| max.saturating_add(1))
}

/// The time bounds of a read, open when absent.
fn time_bounds(
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    use crate::store::db::{after_all, before_all};
    (
        from.unwrap_or_else(before_all),
        before.unwrap_or_else(after_all),
    )
}
