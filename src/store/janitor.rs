//! The janitor: a background task that keeps what only grows in bounds.
//! Each round prunes the event log past its retention and, when run
//! retention is set, deletes finished runs past theirs; both in small
//! batches (one short transaction each, so no lock is held for long); on
//! PostgreSQL one process at a time does each (the others skip the round).
//! Beside its rounds, the deadline timer cancels runs past their flow
//! timeout (see `runs::timeouts`) and takes back executions held past their
//! node timeout (`queue::node_timeouts`), within `DEADLINE_TICK` of their
//! deadlines.

use std::time::Duration;

use crate::store::db::{now, StoreResult};
use crate::store::events::Events;
use crate::store::queue::Queue;
use crate::store::runs::Runs;

/// Events deleted per transaction.
pub const PRUNE_BATCH: i64 = 1000;
/// Finished runs deleted per transaction.
pub const RUNS_BATCH: i64 = 100;

/// The longest the deadline timer sleeps without looking at the index of
/// deadlines (one entry read): a run created with a short timeout while it
/// sleeps is timed out at most this late.
pub const DEADLINE_TICK: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct JanitorSettings {
    /// Time between rounds.
    pub interval: Duration,
    /// Events older than this are pruned from the log.
    pub event_retention: Duration,
    /// Finished runs older than this are deleted; None keeps every run.
    pub run_retention: Option<Duration>,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JanitorReport {
    pub events_pruned: u64,
    pub runs_deleted: u64,
    pub executions_deleted: u64,
}

/// The log and the runs it keeps in bounds.
#[derive(Clone)]
pub struct Janitor {
    events: Events,
    runs: Runs,
    queue: Queue,
}

impl Janitor {
    pub fn new(events: Events, runs: Runs, queue: Queue) -> Self {
        Self {
            events,
            runs,
            queue,
        }
    }

    /// One round, now.
    pub async fn round(&self, settings: &JanitorSettings) -> StoreResult<JanitorReport> {
        let retention = i64::try_from(settings.event_retention.as_millis()).unwrap_or(i64::MAX);
        let horizon_ms = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(retention);
        // Each half runs even when the other fails; the first error is
        // reported after both.
        let pruned = self.events.prune_log(horizon_ms, PRUNE_BATCH).await;
        let events_pruned = *pruned.as_ref().unwrap_or(&0);
        crate::metrics::events_pruned(events_pruned);
        let mut report = JanitorReport {
            events_pruned,
            ..JanitorReport::default()
        };
        if let Some(keep) = settings.run_retention {
            let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
            let horizon = now()
                .checked_sub_signed(keep)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            let deleted = self.runs.delete_finished_runs(horizon, RUNS_BATCH).await?;
            crate::metrics::runs_deleted(deleted.runs, deleted.executions);
            report.runs_deleted = deleted.runs;
            report.executions_deleted = deleted.executions;
        }
        pruned?;
        Ok(report)
    }

    /// Runs a round every `settings.interval`, and the deadline timer, for
    /// as long as the process.
    pub fn spawn(self, settings: JanitorSettings) -> tokio::task::JoinHandle<()> {
        // One task for both, so aborting the handle stops both.
        let deadlines = deadline_timer(self.runs.clone(), self.queue.clone());
        let rounds = async move {
            let mut ticks = tokio::time::interval(settings.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.runs.admit_left_over().await {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "janitor could not read the waiting executions; next round retries")
                    }
                }
                match self.round(&settings).await {
                    Ok(report) if report.events_pruned > 0 => {
                        tracing::info!(
                            events = report.events_pruned,
                            "janitor pruned the event log"
                        )
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "janitor round failed; next round retries")
                    }
                }
            }
        };
        tokio::spawn(async move {
            tokio::join!(deadlines, rounds);
        })
    }
}

/// Takes back the executions past their node deadline, sleeps until the
/// first flow deadline (at most `DEADLINE_TICK`), then cancels the runs
/// past theirs.
async fn deadline_timer(runs: Runs, queue: Queue) {
    loop {
        match queue.time_out_nodes(now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                executions = n,
                "executions taken back past their node timeout"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "the deadline timer could not time out nodes; retrying")
            }
        }
        let next = match runs.next_deadline().await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(error = %err, "the deadline timer could not read the runs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let at = now();
        if next.is_some_and(|deadline| deadline <= at) {
            match runs.time_out_runs(at).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(runs = n, "runs cancelled past their flow timeout"),
                Err(err) => {
                    tracing::warn!(error = %err, "the deadline timer could not time out runs; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            continue;
        }
        let sleep = next
            .and_then(|deadline| (deadline - at).to_std().ok())
            .map_or(DEADLINE_TICK, |d| d.min(DEADLINE_TICK));
        tokio::time::sleep(sleep).await;
    }
}
