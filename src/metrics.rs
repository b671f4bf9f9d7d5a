//! What an operator scrapes at `GET /metrics` (Prometheus text format).
//!
//! Every metric is named here, once; the rest of the code calls these
//! functions. Counters and histograms go through the `metrics` facade (a
//! no-op until [`install`] sets the Prometheus recorder); gauges that are a
//! reading of the present (pool, queue depth, event log) are taken by the
//! scrape handler and handed to [`render`] as plain numbers. This module
//! depends on nothing of ours: everyone may call it, it calls no one.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "execstore_graphql_requests_total";
pub const REQUEST_SECONDS: &str = "execstore_graphql_request_duration_seconds";
pub const ERRORS: &str = "execstore_graphql_errors_total";
pub const DOCUMENTS: &str = "execstore_graphql_documents_total";
pub const HTTP_RESPONSES: &str = "execstore_http_responses_total";
pub const CLAIMS: &str = "execstore_claims_total";
pub const HANDED_OUT: &str = "execstore_claim_next_executions_total";
pub const SUBSCRIPTIONS: &str = "execstore_subscriptions_live";
pub const POOL_SIZE: &str = "execstore_db_pool_connections";
pub const POOL_IN_USE: &str = "execstore_db_pool_connections_in_use";
pub const POOL_MAX: &str = "execstore_db_pool_connections_max";
pub const QUEUE_DEPTH: &str = "execstore_queue_claimable";
pub const QUEUE_DEPTH_BY_FLOW: &str = "execstore_queue_claimable_by_flow";
pub const QUEUE_DEPTH_CAPPED: &str = "execstore_queue_claimable_capped";
pub const EVENTS_READ: &str = "execstore_events_read_total";
pub const EVENT_REPLAYS: &str = "execstore_event_replays_total";
pub const EVENT_LOG_SIZE: &str = "execstore_event_log_events";
pub const EVENT_LOG_OLDEST: &str = "execstore_event_log_oldest_age_seconds";
pub const EVENT_SUBSCRIBERS: &str = "execstore_event_subscribers";
pub const EVENT_SLOWEST: &str = "execstore_event_slowest_subscriber_backlog";
pub const EVENTS_PRUNED: &str = "execstore_event_log_pruned_total";
pub const READS: &str = "execstore_reads_total";
pub const READ_FALLBACKS: &str = "execstore_read_fallbacks_total";
pub const STANDBY_LAG: &str = "execstore_standby_lag_seconds";
pub const STANDBY_UP: &str = "execstore_standby_up";
pub const OLDEST_FINISHED_RUN: &str = "execstore_retention_oldest_finished_run_age_seconds";
pub const RUNS_DELETED: &str = "execstore_retention_runs_deleted_total";
pub const EXECUTIONS_DELETED: &str = "execstore_retention_executions_deleted_total";

/// Queue depth is counted up to this many claimable executions (one
/// bounded read of the claimable index per scrape), over at most
/// [`QUEUE_FLOWS`] flows (the fullest).
pub const QUEUE_BOUND: i64 = 10_000;
pub const QUEUE_FLOWS: i64 = 50;

/// Latency buckets, in seconds: from a claim (~1 ms) to a long wait (25 s).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it). `None`
/// when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS,
        "GraphQL operations served, by operation kind and outcome"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "GraphQL operation latency, by operation kind and outcome"
    );
    describe_counter!(ERRORS, "GraphQL errors returned, by extensions.code");
    describe_counter!(
        DOCUMENTS,
        "GraphQL documents: parsed, or reused (parsed form kept from an earlier request)"
    );
    describe_counter!(HTTP_RESPONSES, "HTTP responses on /graphql, by status code");
    describe_counter!(CLAIMS, "claimExecution calls, by outcome");
    describe_counter!(HANDED_OUT, "executions handed out by claimNextExecutions");
    describe_gauge!(SUBSCRIPTIONS, "live executionEvents subscriptions");
    describe_counter!(
        EVENTS_READ,
        "events read from the event log by this process's live reader"
    );
    describe_counter!(
        EVENT_REPLAYS,
        "subscribers that read the log to resume from a cursor or to catch up"
    );
    describe_gauge!(
        EVENT_LOG_SIZE,
        "events retained in the event log (the span of their sequence numbers)"
    );
    describe_gauge!(EVENT_LOG_OLDEST, "age of the oldest retained event");
    describe_gauge!(
        EVENT_SUBSCRIBERS,
        "subscribers following events live in this process"
    );
    describe_gauge!(
        EVENT_SLOWEST,
        "events waiting for the slowest live subscriber (at the queue's size it goes back to the log)"
    );
    describe_counter!(EVENTS_PRUNED, "events deleted from the log by the janitor");
    describe_counter!(
        READS,
        "query requests by where they read: primary, standby-0, standby-1, …"
    );
    describe_counter!(
        READ_FALLBACKS,
        "query requests sent to the primary although standbys are configured, by reason (lag, down, token, error)"
    );
    describe_gauge!(
        STANDBY_LAG,
        "how long ago the primary wrote WAL the standby has not replayed (0 when caught up)"
    );
    describe_gauge!(STANDBY_UP, "1 when the standby answered its last probe");
    describe_gauge!(
        OLDEST_FINISHED_RUN,
        "how long ago the oldest finished run still kept finished"
    );
    describe_counter!(RUNS_DELETED, "finished runs deleted by run retention");
    describe_counter!(
        EXECUTIONS_DELETED,
        "executions deleted by run retention (the runs' whole trees)"
    );
    describe_gauge!(POOL_SIZE, "database connections open in the pool");
    describe_gauge!(POOL_IN_USE, "database connections lent out");
    describe_gauge!(POOL_MAX, "the pool's configured maximum");
    describe_gauge!(
        QUEUE_DEPTH,
        "claimable executions (CREATED, no live lease), counted up to the bound"
    );
    describe_gauge!(
        QUEUE_DEPTH_BY_FLOW,
        "claimable executions per flow (the fullest flows), counted up to the bound"
    );
    describe_gauge!(
        QUEUE_DEPTH_CAPPED,
        "1 when the queue depth reached its bound"
    );
}

/// One GraphQL operation: `kind` is query, mutation, subscription or
/// unknown (did not parse); `outcome` is ok or error.
pub fn operation(kind: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    counter!(REQUESTS, "operation" => kind, "outcome" => outcome).increment(1);
    histogram!(REQUEST_SECONDS, "operation" => kind, "outcome" => outcome)
        .record(took.as_secs_f64());
}

pub fn error(code: String) {
    counter!(ERRORS, "code" => code).increment(1);
}

/// `reused`: the parsed form was kept from an earlier request.
pub fn document(reused: bool) {
    let how = if reused { "reused" } else { "parsed" };
    counter!(DOCUMENTS, "how" => how).increment(1);
}

pub fn http_response(status: u16) {
    counter!(HTTP_RESPONSES, "status" => status.to_string()).increment(1);
}

/// `outcome`: acquired, not_found, terminal, held_by_other.
pub fn claim(outcome: &'static str) {
    counter!(CLAIMS, "outcome" => outcome).increment(1);
}

pub fn handed_out(n: usize) {
    counter!(HANDED_OUT).increment(n as u64);
}

pub fn events_read(n: usize) {
    counter!(EVENTS_READ).increment(n as u64);
}

pub fn event_replay() {
    counter!(EVENT_REPLAYS).increment(1);
}

pub fn events_pruned(n: u64) {
    counter!(EVENTS_PRUNED).increment(n);
}

/// A query request read from `target` (primary, standby-N).
pub fn read_routed(target: String) {
    counter!(READS, "target" => target).increment(1);
}

/// A query request went to the primary although standbys are configured.
pub fn read_fallback(reason: &'static str) {
    counter!(READ_FALLBACKS, "reason" => reason).increment(1);
}

/// A standby's lag, or `None` while it does not answer.
pub fn standby_lag(standby: &str, lag: Option<Duration>) {
    let label = standby.to_owned();
    gauge!(STANDBY_UP, "standby" => label.clone()).set(if lag.is_some() { 1.0 } else { 0.0 });
    if let Some(lag) = lag {
        gauge!(STANDBY_LAG, "standby" => label).set(lag.as_secs_f64());
    }
}

pub fn runs_deleted(runs: u64, executions: u64) {
    counter!(RUNS_DELETED).increment(runs);
    counter!(EXECUTIONS_DELETED).increment(executions);
}

/// Counts a live subscription for as long as it is held.
pub struct LiveSubscription(());

impl LiveSubscription {
    pub fn start() -> Self {
        gauge!(SUBSCRIPTIONS).increment(1.0);
        Self(())
    }
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        gauge!(SUBSCRIPTIONS).decrement(1.0);
    }
}

/// Readings of the present, taken by the scrape handler.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    pub pool_size: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    /// Claimable executions counted up to [`QUEUE_BOUND`], and by flow
    /// (the fullest); `None` when the database did not answer.
    pub queue: Option<(i64, Vec<(String, i64)>)>,
    /// Events retained, and the age of the oldest in seconds.
    pub event_log: Option<(i64, Option<f64>)>,
    /// Live subscribers, and the most events one of them has waiting.
    pub subscribers: (usize, usize),
    /// Seconds since the oldest finished run still kept finished.
    pub oldest_finished_run: Option<f64>,
}

/// The text a scrape answers: the readings first, then everything recorded.
pub fn render(readings: Readings) -> String {
    let Some(handle) = install() else {
        return String::new();
    };
    gauge!(POOL_SIZE).set(f64::from(readings.pool_size));
    gauge!(POOL_IN_USE).set(f64::from(
        readings.pool_size.saturating_sub(readings.pool_idle),
    ));
    gauge!(POOL_MAX).set(f64::from(readings.pool_max));
    if let Some((total, by_flow)) = readings.queue {
        gauge!(QUEUE_DEPTH).set(total as f64);
        gauge!(QUEUE_DEPTH_CAPPED).set(if total >= QUEUE_BOUND { 1.0 } else { 0.0 });
        // A flow shown by the last scrape and absent now has drained (or
        // fell out of the fullest): it reads 0 rather than its old depth.
        static SHOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let now: Vec<String> = by_flow.iter().map(|(f, _)| f.clone()).collect();
        if let Ok(mut shown) = SHOWN.lock() {
            for gone in shown.iter().filter(|f| !now.contains(f)) {
                gauge!(QUEUE_DEPTH_BY_FLOW, "flow_id" => gone.clone()).set(0.0);
            }
            *shown = now;
        }
        for (flow, n) in by_flow {
            gauge!(QUEUE_DEPTH_BY_FLOW, "flow_id" => flow).set(n as f64);
        }
    }
    if let Some((events, oldest)) = readings.event_log {
        gauge!(EVENT_LOG_SIZE).set(events as f64);
        gauge!(EVENT_LOG_OLDEST).set(oldest.unwrap_or(0.0));
    }
    if let Some(age) = readings.oldest_finished_run {
        gauge!(OLDEST_FINISHED_RUN).set(age);
    }
    gauge!(EVENT_SUBSCRIBERS).set(readings.subscribers.0 as f64);
    gauge!(EVENT_SLOWEST).set(readings.subscribers.1 as f64);
    handle.run_upkeep();
    handle.render()
}
