//! Flow timeouts: a run whose root has `options.execution.flowTimeoutMs`
//! and is not finished that long after the root's start (or, not started,
//! since it was due: its creation or its `runAt`; a retry of the run makes
//! it due again) is cancelled with reason "flow timeout", as
//! `cancelExecution` cancels (the whole run, claims released, holders told
//! `CANCELLED`).
//!
//! A root's deadline is stored when it is created (`deadline_at`: its start
//! or creation plus the timeout) and read through an index that holds only
//! unfinished roots with one, so the timer reads the runs that are due and
//! nothing else. A root that starts after its creation keeps the early
//! deadline until the timer reaches it: then the timeout is counted again
//! from the start, and the deadline moves there (so no write to a status
//! has to know about deadlines). `deadline_at` is thus when the timer looks
//! at a run next, never later than its deadline. A move is an update of the
//! root, so it shows on the live stream as an `updated` event with no
//! field of the API changed. The timer runs in every server: a run two of
//! them time out at once is cancelled once (both lock its rows in id order;
//! the second finds nothing left to stop).

use chrono::{DateTime, Utc};

use super::Runs;
use crate::store::db::{run, Effects, RunControls, Scope, StoreResult};

/// Where a root's flow timeout counts from: its start, or when it was due,
/// whichever is later (a root scheduled for next week is not timed out
/// before it may run; one retried counts from the retry, its due time).
pub(crate) fn counted_from(
    started_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    run_at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    started_at
        .unwrap_or(created_at)
        .max(run_at.unwrap_or(created_at))
}

/// Runs the deadline timer cancels at a time (each its own transaction; on
/// PostgreSQL each on a connection of the pool, on SQLite committed
/// together by the group commit).
const AT_ONCE: usize = 8;

/// The reason a flow timeout gives its run's executions.
pub(crate) const FLOW_TIMEOUT: &str = "flow timeout";

impl Runs {
    /// Cancels the runs past their flow timeout at `at` (up to 100 roots a
    /// call, `AT_ONCE` of them at a time: runs due together are not
    /// cancelled one after another) and moves the deadlines of roots started
    /// later; how many runs it cancelled.
    pub async fn time_out_runs(&self, at: DateTime<Utc>) -> StoreResult<u64> {
        use futures_util::StreamExt;
        let due = self.db.stmt(self.db.sql().flow_deadlines, [at.into()]);
        let roots = run::executions::<_, entity::execution::Model>(self.db.primary(), due).await?;
        let looked: Vec<StoreResult<bool>> = futures_util::stream::iter(roots)
            .map(|root| self.look_at(root, at))
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let mut cancelled = 0;
        for result in looked {
            cancelled += u64::from(result?);
        }
        Ok(cancelled)
    }

    /// One root past its deadline at `at`: its run cancelled (true), or its
    /// deadline moved.
    async fn look_at(
        &self,
        root: entity::execution::Model,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let timeout = RunControls::of(root.options.as_ref())
            .ok()
            .and_then(|c| c.flow_timeout_ms);
        let deadline = timeout.map(|ms| {
            counted_from(root.started_at, root.created_at, root.run_at)
                + chrono::Duration::milliseconds(ms)
        });
        match deadline {
            Some(deadline) if deadline <= at => {
                match self.cancel(&root.id, Some(FLOW_TIMEOUT), &Scope::All).await {
                    Ok(stopped) => Ok(stopped > 0),
                    // One run that cannot be cancelled now (a statement
                    // timeout on a huge run, say) must not hold up the
                    // others: it is looked at again a second later.
                    Err(err) => {
                        tracing::warn!(root = %root.id, error = %err, "a flow timeout could not cancel its run; retrying");
                        let again = at + chrono::Duration::seconds(1);
                        self.move_deadline(&root.id, Some(again)).await?;
                        Ok(false)
                    }
                }
            }
            // Started after its creation, or no timeout any more.
            later => {
                self.move_deadline(&root.id, later).await?;
                Ok(false)
            }
        }
    }

    /// When the first unfinished run's deadline comes (None: no run has one).
    pub async fn next_deadline(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let next = self.db.stmt(self.db.sql().next_deadline, []);
        run::time_at(self.db.primary(), next).await
    }

    async fn move_deadline(&self, id: &str, to: Option<DateTime<Utc>>) -> StoreResult<()> {
        let moved = self.db.stmt(
            self.db.sql().move_deadline,
            [id.to_owned().into(), to.into()],
        );
        self.db
            .write(move |w| {
                Box::pin(async move {
                    use sea_orm::ConnectionTrait;
                    w.execute(moved).await?;
                    Ok(((), Effects::logged()))
                })
            })
            .await
    }
}
