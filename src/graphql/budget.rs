//! The row budget of one request (`EXECSTORE_MAX_NODES`): how many
//! executions its resolvers may load in all. Loads whose size the request
//! does not bound (trees, levels of `children`) run one at a time and ask the
//! store for at most what is left (a LIMIT), so an over-budget request is
//! refused before the rows are in memory, however many aliases it holds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_graphql::Context;
use tokio::sync::{Mutex, MutexGuard};

use crate::store::{StoreError, StoreResult};

#[derive(Clone)]
pub struct RowBudget(Arc<Inner>);

struct Inner {
    limit: i64,
    remaining: AtomicI64,
    /// Held across an unbounded load, so siblings cannot all see the same
    /// remainder and together overshoot it.
    gate: Mutex<()>,
}

impl RowBudget {
    pub fn new(limit: i64) -> Self {
        Self(Arc::new(Inner {
            limit,
            remaining: AtomicI64::new(limit),
            gate: Mutex::new(()),
        }))
    }

    /// The request's budget; None where there is none (a subscription).
    pub fn of(ctx: &Context<'_>) -> Option<Self> {
        ctx.data_opt::<RowBudget>().cloned()
    }

    /// Counts rows a field loaded against its request's budget, if any.
    pub fn charge_in(ctx: &Context<'_>, rows: usize) -> StoreResult<()> {
        match Self::of(ctx) {
            Some(budget) => budget.charge(rows),
            None => Ok(()),
        }
    }

    /// The budget's gate, held while a load runs alone (None without a
    /// budget: nothing to wait for).
    pub async fn alone(budget: Option<&RowBudget>) -> Option<MutexGuard<'_, ()>> {
        match budget {
            Some(budget) => Some(budget.0.gate.lock().await),
            None => None,
        }
    }

    pub fn remaining(&self) -> i64 {
        self.0.remaining.load(Ordering::SeqCst).max(0)
    }

    /// Counts `rows` loaded; an error once the budget is spent.
    pub fn charge(&self, rows: usize) -> StoreResult<()> {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        if self.0.remaining.fetch_sub(rows, Ordering::SeqCst) < rows {
            return Err(self.exceeded());
        }
        Ok(())
    }

    /// The store's refusal of a load, restated against the whole budget.
    pub fn exceeded(&self) -> StoreError {
        StoreError::TooManyRows {
            limit: self.0.limit,
        }
    }

    /// Runs a load the request does not bound: alone, with at most what is
    /// left of the budget, and charges what it returned.
    pub async fn bounded<T>(
        budget: Option<&RowBudget>,
        load: impl AsyncFnOnce(Option<i64>) -> StoreResult<Vec<T>>,
        count: impl Fn(&T) -> usize,
    ) -> StoreResult<Vec<T>> {
        let _alone = Self::alone(budget).await;
        Self::within(budget, load, count).await
    }

    /// `bounded` for a caller that already holds the gate.
    pub async fn within<T>(
        budget: Option<&RowBudget>,
        load: impl AsyncFnOnce(Option<i64>) -> StoreResult<Vec<T>>,
        count: impl Fn(&T) -> usize,
    ) -> StoreResult<Vec<T>> {
        let Some(budget) = budget else {
            return load(None).await;
        };
        let rows = match load(Some(budget.remaining())).await {
            Err(StoreError::TooManyRows { .. }) => return Err(budget.exceeded()),
            other => other?,
        };
        budget.charge(rows.iter().map(count).sum())?;
        Ok(rows)
    }
}
