//! Concurrency limits per key: `setConcurrencyLimit` and
//! `concurrencyLimits`. (A run's limit is its root's `maxConcurrency`; the
//! admission to both kinds of slot is `db::slots`.)

use super::Runs;
use crate::store::db::{validate, ConcurrencyLimit, StoreResult};

/// The most a key's limit may allow at once (as a run's `maxConcurrency`).
const MAX_LIMIT: i64 = 1_000_000;

impl Runs {
    /// `setConcurrencyLimit`: at most `limit` executions of key `key` hold a
    /// slot at once (None: the key has no limit). Answers the key's limit
    /// and how many hold a slot now; None once removed.
    pub async fn set_concurrency_limit(
        &self,
        key: &str,
        limit: Option<i32>,
    ) -> StoreResult<Option<ConcurrencyLimit>> {
        validate::id("key", key)?;
        if let Some(limit) = limit {
            validate::range("limit", i64::from(limit), 1, MAX_LIMIT)?;
        }
        self.db.set_concurrency_limit(key, limit).await
    }

    /// The janitor's part of admission (`Db::admit_left_over`).
    pub async fn admit_left_over(&self) -> StoreResult<()> {
        self.db.admit_left_over().await
    }

    /// `concurrencyLimits`: every key's limit, in key order.
    pub async fn concurrency_limits(&self) -> StoreResult<Vec<ConcurrencyLimit>> {
        self.db.concurrency_limits(None).await
    }
}
