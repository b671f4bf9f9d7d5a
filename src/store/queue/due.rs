//! The due timer: executions not due yet (scheduled for later, or waiting
//! out a retry's backoff) wait outside the fresh queue, their lease their
//! due time, so pulls never step over them. One timer per process sleeps
//! until the first of them is due (as the index of waiting executions and
//! this process's own writes tell it), puts those that are due into the
//! queue, and wakes waiting workers: a worker waiting with `waitMs` gets a
//! due execution within milliseconds of its time, without polling the table.
//! It also looks at the index once a second, for executions another process
//! made wait (a pull that runs short puts due ones in the queue too).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::Queue;
use crate::store::db::{now, run, Effects, StoreResult};

/// The longest the timer sleeps without looking at the index.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

impl Queue {
    /// Starts this process's due timer, once (every pull asks).
    pub fn start_due_timer(&self) {
        if self.db.bus().start_timing() {
            tokio::spawn(run_timer(self.clone()));
        }
    }

    /// Puts the waiting executions due by now into the fresh queue (at most
    /// 1,000 at a time); how many.
    pub async fn promote_due(&self) -> StoreResult<u64> {
        let text = self.db.sql().promote_due;
        let at = now();
        self.db
            .write(move |w| {
                Box::pin(async move {
                    let promote = run::statement(w.get_database_backend(), text, [at.into()]);
                    let promoted = w.query_all(promote).await?.len() as u64;
                    // Back in the queue, possibly before a queue head.
                    let effects = match promoted {
                        0 => Effects::none(),
                        _ => Effects::logged().requeued_if(true),
                    };
                    Ok((promoted, effects))
                })
            })
            .await
    }

    /// When the first waiting execution is due (None: none waits).
    pub async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let next = self.db.stmt(self.db.sql().next_due, []);
        run::time_at(self.db.primary(), next).await
    }
}

async fn run_timer(queue: Queue) {
    let mut hints = queue.db.bus().watch_due();
    loop {
        hints.borrow_and_update();
        let now = now();
        let next = match queue.next_due().await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(error = %err, "the due timer could not read the queue; retrying");
                tokio::time::sleep(LOOK_AT_LEAST_EVERY).await;
                continue;
            }
        };
        if next.is_some_and(|at| at <= now) {
            match queue.promote_due().await {
                Ok(0) => {
                    // Due, but being promoted elsewhere: look again shortly.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "the due timer could not promote; retrying");
                    tokio::time::sleep(LOOK_AT_LEAST_EVERY).await;
                }
            }
            queue.db.bus().due_done(now);
            continue;
        }
        let sleep = next
            .and_then(|at| (at - now).to_std().ok())
            .map_or(LOOK_AT_LEAST_EVERY, |d| d.min(LOOK_AT_LEAST_EVERY));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            changed = hints.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
