//! The worker queue against its targets, in ONE run on ONE throwaway
//! PostgreSQL (and a SQLite file): pulls with `claimNextExecutions` against
//! `claimExecution` by id and the pgbench one-statement floor, the per-call
//! cost with a large backlog of leased executions, and wake-up latency.
//!
//!     cargo bench --bench queue              # full run, rewrites its section of BENCHMARKS.md
//!     cargo bench --bench queue -- --smoke   # tiny sizes, prints only
//!
//! Every load loop is bounded (a deadline and a request cap) and talks only
//! to 127.0.0.1.

mod common;
#[path = "queue_parts/limits.rs"]
mod limits;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use execstore::store::{self, DbOptions};
use serde_json::{json, Value};

#[derive(Clone, Copy)]
struct Sizes {
    claim_pool: usize,
    drain_1: usize,
    drain_50: usize,
    backlog: usize,
    backlog_calls: usize,
    wake: usize,
    sqlite_drain: usize,
    /// Executions per batched-round drain (per round and backend).
    batched: usize,
    rounds: usize,
    seconds: f64,
    /// Executions a drain of the time section pulls, and those not due in
    /// its crowded flow (as many due next week, as many backing off).
    due_drain: usize,
    not_due: usize,
    /// Executions made due at spread times for a waiting worker.
    due_spread: usize,
    /// Priority-0 executions queued before a priority-10 one.
    prio_backlog: usize,
    /// Executions of the run cancelled while workers pull it.
    cancel_run: usize,
    /// Runs timed out by their flow timeout.
    timed_runs: usize,
    /// Runs and children of the concurrency-limit section.
    limited_runs: usize,
    per_limited_run: usize,
    blocked_runs: usize,
    blocked_per_run: usize,
}

const FULL: Sizes = Sizes {
    claim_pool: 90_000,
    drain_1: 6_000,
    drain_50: 60_000,
    backlog: 100_000,
    backlog_calls: 2_000,
    wake: 1_000,
    sqlite_drain: 10_000,
    batched: 40_000,
    rounds: 3,
    seconds: 4.0,
    due_drain: 40_000,
    not_due: 100_000,
    due_spread: 200,
    prio_backlog: 50_000,
    cancel_run: 100_000,
    timed_runs: 100,
    limited_runs: 1_000,
    per_limited_run: 20,
    blocked_runs: 1_000,
    blocked_per_run: 102,
};

const SMOKE: Sizes = Sizes {
    claim_pool: 3_000,
    drain_1: 200,
    drain_50: 1_000,
    backlog: 2_000,
    backlog_calls: 100,
    wake: 20,
    sqlite_drain: 200,
    batched: 1_000,
    rounds: 1,
    seconds: 0.5,
    due_drain: 1_000,
    not_due: 2_000,
    due_spread: 20,
    prio_backlog: 1_000,
    cancel_run: 2_000,
    timed_runs: 20,
    limited_runs: 20,
    per_limited_run: 5,
    blocked_runs: 20,
    blocked_per_run: 12,
};

const SECTION: &str = "queue";
const PULL: &str = "mutation($w: String!, $f: ID!, $n: Int!, $wait: Int) { claimNextExecutions(workerId: $w, timeoutMs: 600000, flowId: $f, limit: $n, waitMs: $wait) { id } }";
const FINISH_MANY: &str = "mutation($items: [FinishExecutionInput!]!) { finishExecutions(inputs: $items) { executionId finished } }";
const CREATE_MANY: &str =
    "mutation($inputs: [CreateExecutionInput!]!) { createExecutions(inputs: $inputs) { id } }";
/// Items per `createExecutions` request.
const CREATE_BATCH: usize = 1_000;

fn main() {
    bench_main(SECTION, |smoke| {
        run(if smoke { SMOKE } else { FULL }, smoke)
    });
}

async fn insert_created(
    db: &sea_orm::DatabaseConnection,
    prefix: &str,
    flow: &str,
    n: usize,
    offset_ms: usize,
) {
    exec(
        db,
        &format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, created_at, updated_at, failure_count) \
             SELECT '{prefix}-' || i, '{flow}', 'bench', '{prefix}-' || i, 'created', 0, \
             timestamptz '2026-01-01 00:00:00+00' + (i + {offset_ms}) * interval '1 ms', timestamptz '2026-01-01 00:00:00+00', 0 \
             FROM generate_series(1, {n}) i"
        ),
    )
    .await;
}

/// One call's answer: the ids it claimed.
fn claimed_ids(body: &Value) -> Vec<String> {
    body["data"]["claimNextExecutions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `workers` clients pull `flow` with `limit` until it is empty; returns
/// (executions/s, each id once?, per-call latencies in order).
async fn drain(
    url: &str,
    flow: &str,
    workers: usize,
    limit: usize,
    expected: usize,
) -> (f64, bool, Vec<f64>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (url, flow, seen, calls) = (url.to_owned(), flow.to_owned(), seen.clone(), calls.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..1_000_000 {
                    let body = json!({ "query": PULL, "variables": { "w": format!("w{w}"), "f": flow, "n": limit } });
                    let t = Instant::now();
                    let got: Value = client.post(&url).json(&body).send().await.expect("pull").json().await.expect("json");
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let ids = claimed_ids(&got);
                    if ids.is_empty() {
                        break;
                    }
                    calls.lock().unwrap().push((t, ms));
                    seen.lock().unwrap().extend(ids);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("drain worker");
    }
    let rate = expected as f64 / started.elapsed().as_secs_f64();
    let seen = seen.lock().unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    let once = seen.len() == expected && unique.len() == expected;
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_by_key(|(t, _)| *t);
    (rate, once, calls.into_iter().map(|(_, ms)| ms).collect())
}

/// `workers` workers drain `flow` with batched rounds: pull 50, then finish
/// them all in one `finishExecutions`. Returns (executions completed/s,
/// each completed exactly once?).
async fn batched_rounds(url: &str, flow: &str, workers: usize, expected: usize) -> (f64, bool) {
    let done = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (url, flow, done) = (url.to_owned(), flow.to_owned(), done.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let worker = format!("bw{w}");
                for _ in 0..1_000_000 {
                    let body =
                        json!({ "query": PULL, "variables": { "w": worker, "f": flow, "n": 50 } });
                    let got: Value = client
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .expect("pull")
                        .json()
                        .await
                        .expect("json");
                    let ids = claimed_ids(&got);
                    if ids.is_empty() {
                        break;
                    }
                    let finished = finish_all(&client, &url, &worker, &ids).await;
                    done.lock().unwrap().extend(finished);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("batched worker");
    }
    let rate = expected as f64 / started.elapsed().as_secs_f64();
    let done = done.lock().unwrap();
    let unique: HashSet<&String> = done.iter().collect();
    (rate, done.len() == expected && unique.len() == expected)
}

/// `ids` finished COMPLETED by `worker` in one `finishExecutions`: the ids
/// it finished.
async fn finish_all(
    client: &reqwest::Client,
    url: &str,
    worker: &str,
    ids: &[String],
) -> Vec<String> {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "executionId": id, "workerId": worker, "status": "COMPLETED" }))
        .collect();
    let body = json!({ "query": FINISH_MANY, "variables": { "items": items } });
    let got: Value = client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("finish")
        .json()
        .await
        .expect("json");
    got["data"]["finishExecutions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["finished"] == true)
                .filter_map(|o| o["executionId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `createExecutions` of `CREATE_BATCH` new executions per request, from
/// `conns` clients: executions created per second (median of the rounds).
async fn create_batches(url: &str, tag: &str, conns: usize, s: &Sizes) -> Run {
    let accept: Accept = Arc::new(|b: &[u8]| !String::from_utf8_lossy(b).contains("\"errors\""));
    let mut measured = Vec::new();
    for round in 0..s.rounds {
        // Ids of their own per round: `drive` numbers each run's requests
        // from 0, and the same ids again would be updates, not creates.
        let tag = format!("{tag}-r{round}");
        let make: MakeBody = Arc::new(move |n| {
            let inputs: Vec<Value> = (0..CREATE_BATCH)
                .map(|i| json!({ "id": format!("{tag}-{n}-{i}"), "flowId": "batch-create", "ownerId": "bench" }))
                .collect();
            json!({ "query": CREATE_MANY, "variables": { "inputs": inputs } })
        });
        let run = drive(url, conns, s.seconds, 10_000, make.clone(), accept.clone()).await;
        assert_eq!(run.errors, 0, "createExecutions refused");
        measured.push(run);
    }
    let mut run = median_run(&measured);
    run.rps *= CREATE_BATCH as f64;
    run
}

fn pct(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(s: Sizes, smoke: bool) -> String {
    let binary = build_release_server();
    let (cluster, url, db) = bench_database(&[]).await;
    step("loading queues");
    insert_created(&db, "cb", "claim-by-id", s.claim_pool, 0).await;
    insert_created(&db, "cf", "claim-floor", s.claim_pool, 0).await;
    exec(&db, "CREATE SEQUENCE bench_cf_seq").await;
    for round in 0..s.rounds {
        insert_created(
            &db,
            &format!("n1r{round}"),
            &format!("n1r{round}"),
            s.drain_1,
            0,
        )
        .await;
        insert_created(
            &db,
            &format!("n50r{round}"),
            &format!("n50r{round}"),
            s.drain_50,
            0,
        )
        .await;
    }
    for round in 0..s.rounds {
        insert_created(
            &db,
            &format!("br{round}"),
            &format!("br{round}"),
            s.batched,
            0,
        )
        .await;
    }
    // The backlog: executions pulled (leased) and still CREATED, older than
    // the fresh ones, in the same flow as the calls that are timed.
    insert_created(&db, "bkold", "backlog", s.backlog, 0).await;
    exec(&db, "UPDATE executions SET lease_expires_at = now() + interval '1 hour', processing_worker_id = 'holder' WHERE flow_id = 'backlog'").await;
    exec(&db, "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
               SELECT id, 'holder', now(), now() + interval '1 hour', now(), 'active' FROM executions WHERE flow_id = 'backlog'").await;
    insert_created(
        &db,
        "bknew",
        "backlog",
        s.backlog_calls + 10,
        s.backlog + 10,
    )
    .await;
    insert_created(&db, "nb", "no-backlog", s.backlog_calls + 10, 0).await;
    // Time in the queue: a drain of due executions alone, and the same
    // beside as many due next week and as many waiting out a backoff.
    for round in 0..s.rounds {
        insert_created(
            &db,
            &format!("dcr{round}"),
            &format!("due-clean-r{round}"),
            s.due_drain,
            0,
        )
        .await;
        let crowded = format!("due-crowded-r{round}");
        insert_created(&db, &format!("dxr{round}"), &crowded, s.due_drain, 0).await;
        insert_created(&db, &format!("dwr{round}"), &crowded, s.not_due, 0).await;
        exec(&db, &format!("UPDATE executions SET run_at = now() + interval '7 days', lease_expires_at = now() + interval '7 days' WHERE id LIKE 'dwr{round}-%'")).await;
        insert_created(&db, &format!("dbr{round}"), &crowded, s.not_due, 0).await;
        exec(&db, &format!("UPDATE executions SET run_at = now() + interval '1 hour', lease_expires_at = now() + interval '1 hour', \
                            failure_count = 1 + (length(id) % 4), last_failure_at = now(), last_failure_reason = 'boom' WHERE id LIKE 'dbr{round}-%'")).await;
    }
    insert_created(&db, "prio", "prio", s.prio_backlog, 0).await;
    exec(&db, "VACUUM ANALYZE").await;

    let (server, es_url) = start_execstore(&binary, &url).await;

    // claimExecution by id, and the floor.
    let by_id =
        claim_by_id_at_each_size(&es_url, &cluster, s.claim_pool, s.rounds, s.seconds).await;

    // Pulls.
    let mut pulls = Vec::new();
    for (limit, size, prefix) in [(1, s.drain_1, "n1r"), (50, s.drain_50, "n50r")] {
        step(&format!("claimNextExecutions limit {limit}, 8 workers"));
        let (mut rates, mut all_once, mut starts, mut ends) =
            (Vec::new(), true, Vec::new(), Vec::new());
        for round in 0..s.rounds {
            let (rate, once, calls) =
                drain(&es_url, &format!("{prefix}{round}"), 8, limit, size).await;
            all_once &= once;
            rates.push(rate);
            let tenth = (calls.len() / 10).max(1);
            starts.push(pct(calls[..tenth.min(calls.len())].to_vec(), 0.5));
            ends.push(pct(
                calls[calls.len().saturating_sub(tenth)..].to_vec(),
                0.5,
            ));
        }
        pulls.push((
            limit,
            size,
            median(rates),
            all_once,
            median(starts),
            median(ends),
        ));
    }

    // Per-call cost with and without the backlog (1 worker, limit 1).
    step("per-call p50 with and without a backlog of leased executions");
    let pull_one = |flow: &str| -> MakeBody {
        let flow = flow.to_owned();
        Arc::new(move |_| json!({ "query": PULL, "variables": { "w": "solo", "f": flow, "n": 1 } }))
    };
    let accept_one: Accept = Arc::new(|b: &[u8]| b.windows(5).any(|w| w == b"\"id\":"));
    let cap = s.backlog_calls / 2;
    // Alternate the two queues, twice each, and keep the medians.
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (flow, out) in [("no-backlog", &mut without), ("backlog", &mut with)] {
            let run = drive(&es_url, 1, 60.0, cap, pull_one(flow), accept_one.clone()).await;
            out.push(run.p50_ms);
        }
    }
    let (p_without, p_with) = (median(without), median(with));

    // Wake-up latency: 8 waiting workers, executions created one at a time.
    step("wake-up latency");
    let latencies = wake_latency(&es_url, s.wake).await;

    // (EXECSTORE_BENCH_WITHOUT_TIME: for a server binary from before due
    // times and priorities, measured against this one with the rest.)
    let time = match std::env::var_os("EXECSTORE_BENCH_WITHOUT_TIME") {
        Some(_) => None,
        None => Some(time_in_the_queue(&es_url, &s).await),
    };

    // (EXECSTORE_BENCH_WITHOUT_CONTROL: for a server from before run
    // control.)
    let control = std::env::var_os("EXECSTORE_BENCH_WITHOUT_CONTROL").is_none();
    let pg_cancel = match control {
        true => Some(cancel_under_load(&es_url, "PostgreSQL", s.cancel_run).await),
        false => None,
    };
    let pg_timeouts = match control {
        true => Some(flow_timeouts(&es_url, "PostgreSQL", s.timed_runs).await),
        false => None,
    };
    let limit_sizes = limits::LimitSizes {
        runs: s.limited_runs,
        per_run: s.per_limited_run,
        blocked_runs: s.blocked_runs,
        blocked_per_run: s.blocked_per_run,
        calls: s.backlog_calls,
        rounds: s.rounds,
    };
    let mut limited = Vec::new();
    if control {
        exec(&db, "VACUUM ANALYZE").await;
        limited.push(limits::concurrency_limits(&es_url, "PostgreSQL", "pg", &limit_sizes).await);
    }

    // Each batch section starts on a vacuumed database (as pgbench starts
    // its runs): the sections before leave hundreds of thousands of dead
    // and new rows, and autovacuum cleaning them up during a timed section
    // took a core of this two-core machine from it.
    step("PostgreSQL: createExecutions of 1,000, 2 clients");
    exec(&db, "VACUUM ANALYZE").await;
    let pg_create = create_batches(&es_url, "pg", 2, &s).await;
    step("PostgreSQL: batched rounds, 8 workers");
    exec(&db, "VACUUM ANALYZE").await;
    let pg_rounds = batched_drains(&es_url, "br", &s).await;
    drop(server);

    // SQLite, the durable default (synchronous=full).
    let dir = std::env::temp_dir().join(format!("execstore-queue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    {
        let sdb = store::connect(&sqlite_url, &DbOptions::default())
            .await
            .expect("sqlite");
        let store = store::ExecutionStore::new(sdb.clone());
        let mut queues = vec![("sq".to_owned(), s.sqlite_drain)];
        queues.extend((0..s.rounds).map(|round| (format!("sqb{round}"), s.batched / 4)));
        for (flow, n) in queues {
            for chunk in (0..n).collect::<Vec<_>>().chunks(store::limits::MAX_BATCH) {
                let inputs = chunk
                    .iter()
                    .map(|i| store::CreateExecution {
                        id: Some(format!("{flow}-{i}")),
                        flow_id: flow.clone(),
                        owner_id: "bench".into(),
                        ..Default::default()
                    })
                    .collect();
                store
                    .runs()
                    .create_many(inputs, &store::Scope::All)
                    .await
                    .expect("sqlite create");
            }
        }
        sdb.close().await.ok();
    }
    let (sq_server, sq_url) = start_execstore(&binary, &sqlite_url).await;
    step("SQLite: claimNextExecutions limit 1, 8 workers");
    let (sq_rate, sq_once, _) = drain(&sq_url, "sq", 8, 1, s.sqlite_drain).await;
    step("SQLite: createExecutions of 1,000, 2 clients");
    let sq_create = create_batches(&sq_url, "sq", 2, &s).await;
    step("SQLite: batched rounds, 8 workers");
    let sq_rounds = batched_drains(
        &sq_url,
        "sqb",
        &Sizes {
            batched: s.batched / 4,
            ..s
        },
    )
    .await;
    let sq_cancel = match control {
        true => Some(cancel_under_load(&sq_url, "SQLite", s.cancel_run).await),
        false => None,
    };
    let sq_timeouts = match control {
        true => Some(flow_timeouts(&sq_url, "SQLite", s.timed_runs).await),
        false => None,
    };
    if control {
        limited.push(limits::concurrency_limits(&sq_url, "SQLite", "sq", &limit_sizes).await);
    }
    drop(sq_server);

    // SQLite durability: what synchronous=FULL (the default) costs writes.
    let mut durability = Vec::new();
    for mode in ["full", "normal"] {
        step(&format!("SQLite: createExecution, synchronous={mode}"));
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("sync-{mode}.db")).display()
        );
        let (server, gql) =
            start_execstore_with(&binary, &url, &[("EXECSTORE_SQLITE_SYNCHRONOUS", mode)]).await;
        for conns in [1, 8] {
            let tag = format!("{mode}-{conns}");
            let make: MakeBody = Arc::new(move |n| {
                json!({
                    "query": "mutation($i: CreateExecutionInput!) { createExecution(input: $i) { id } }",
                    "variables": { "i": { "id": format!("{tag}-{n}"), "flowId": "durability", "ownerId": "bench" } }
                })
            });
            let accept: Accept =
                Arc::new(|b: &[u8]| !String::from_utf8_lossy(b).contains("\"errors\""));
            let mut measured = Vec::new();
            for _ in 0..s.rounds {
                measured.push(
                    drive(
                        &gql,
                        conns,
                        s.seconds,
                        usize::MAX,
                        make.clone(),
                        accept.clone(),
                    )
                    .await,
                );
            }
            durability.push((mode, conns, median_run(&measured)));
        }
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = cluster.stop();

    report(
        &s,
        &by_id,
        &pulls,
        (p_without, p_with),
        &latencies,
        (sq_rate, sq_once),
        &durability,
        &Batches {
            pg_create,
            sq_create,
            pg_rounds,
            sq_rounds,
            sq_rounds_size: s.batched / 4,
        },
        smoke,
    ) + &time.map(|t| t.report(&s)).unwrap_or_default()
        + &match (pg_cancel, sq_cancel) {
            (Some(pg), Some(sq)) => Cancelled::report(s.cancel_run, &pg, &sq),
            _ => String::new(),
        }
        + &match (pg_timeouts, sq_timeouts) {
            (Some(pg), Some(sq)) => format!(
                "Flow timeouts (issue #30): {} runs whose roots have `flowTimeoutMs` spread over 200–{} ms, nothing else running; how long after its deadline each run was cancelled \
                 (the root's `completedAt` minus `createdAt` + timeout): PostgreSQL p50 **{:.0} ms**, p99 **{:.0} ms**, \
                 max {:.0} ms; SQLite p50 **{:.0} ms**, p99 **{:.0} ms**, max {:.0} ms (target: p99 ≤ 1,000 ms).\n\n",
                s.timed_runs,
                200 + 10 * (s.timed_runs.min(100) - 1),
                pct(pg.clone(), 0.5),
                pct(pg.clone(), 0.99),
                pct(pg, 1.0),
                pct(sq.clone(), 0.5),
                pct(sq.clone(), 0.99),
                pct(sq, 1.0),
            ),
            _ => String::new(),
        }
        + &match limited.is_empty() {
            true => String::new(),
            false => limits::Limits::report(&limited, &limit_sizes),
        }
}

/// `body` posted to `url`, answered without errors.
async fn post_ok(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let got: Value = client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert!(got["errors"].is_null(), "{got}");
    got
}

/// `n` runs with flow timeouts spread over a second: how late (ms) after its
/// deadline each was cancelled, by the server's own deadline timer.
async fn flow_timeouts(url: &str, backend: &str, n: usize) -> Vec<f64> {
    step(&format!(
        "{backend}: {n} runs timed out by their flowTimeoutMs"
    ));
    let client = reqwest::Client::new();
    let post = |body: Value| post_ok(&client, url, body);
    let inputs: Vec<Value> = (0..n)
        .map(|i| {
            json!({ "id": format!("timed-{i}"), "flowId": "timed", "ownerId": "bench",
                         "options": { "execution": { "flowTimeoutMs": 200 + 10 * (i % 100) } } })
        })
        .collect();
    post(json!({ "query": CREATE_MANY, "variables": { "inputs": inputs } })).await;
    let read: String = (0..n)
        .map(|i| {
            format!(
                "e{i}: execution(id: \"timed-{i}\") {{ status createdAt completedAt options }} "
            )
        })
        .collect();
    let query = json!({ "query": format!("{{ {read} }}") });
    // Bounded: the last deadline is 1.19 s away; give up after 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = post(query.clone()).await;
        let rows: Vec<&Value> = (0..n).map(|i| &got["data"][format!("e{i}")]).collect();
        if rows.iter().all(|r| r["status"] == "STOPPED") {
            let time = |v: &Value| {
                chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("rfc3339")
            };
            return rows
                .iter()
                .map(|r| {
                    let ms = r["options"]["execution"]["flowTimeoutMs"]
                        .as_i64()
                        .expect("timeout");
                    let due = time(&r["createdAt"]) + chrono::Duration::milliseconds(ms);
                    (time(&r["completedAt"]) - due)
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: runs not timed out within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What cancelling a run under load measured (one backend).
struct Cancelled {
    /// The answer of `cancelExecution`, ms.
    answer_ms: f64,
    /// How many it stopped; how many the workers had pulled before.
    stopped: u64,
    pulled_before: usize,
    /// Executions of the run handed out by pulls that started after the
    /// answer (must be none), and how many such pulls there were.
    late: usize,
    pulls_after: usize,
}

impl Cancelled {
    fn report(n: usize, pg: &Cancelled, sq: &Cancelled) -> String {
        let row = |name: &str, c: &Cancelled| {
            format!(
                "| {name} | **{:.0} ms** | {} | {} | {} | **{}** |\n",
                c.answer_ms, c.stopped, c.pulled_before, c.pulls_after, c.late
            )
        };
        format!(
            "Run control (issue #30): `cancelExecution` of a run of {n} executions (a root and its children) while 8 workers \
             pull it (limit 50, 600 s claims): the answer's time; then the workers pull on for a second.\n\n\
             | backend | cancel answered in | stopped | pulled before | pulls after the answer | of the run handed out after |\n\
             |---|---:|---:|---:|---:|---:|\n{}{}\n",
            row("PostgreSQL", pg),
            row("SQLite", sq),
        )
    }
}

/// A run of `n` executions, 8 workers pulling it; once they have taken
/// some, the run is cancelled; they pull on for a second after the answer.
async fn cancel_under_load(url: &str, backend: &str, n: usize) -> Cancelled {
    step(&format!(
        "{backend}: cancelExecution of a {n}-execution run under 8 pulling workers"
    ));
    let client = reqwest::Client::new();
    let post = |body: Value| post_ok(&client, url, body);
    let root = format!("cancel-{backend}");
    post(json!({ "query": CREATE_MANY, "variables": { "inputs": [
        { "id": root, "flowId": root, "ownerId": "bench" }] } }))
    .await;
    let children: Vec<usize> = (1..n).collect();
    for chunk in children.chunks(CREATE_BATCH) {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|i| json!({ "id": format!("{root}.{i}"), "flowId": root, "ownerId": "bench", "parentExecutionId": root }))
            .collect();
        post(json!({ "query": CREATE_MANY, "variables": { "inputs": inputs } })).await;
    }
    let answered: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (before, late, pulls_after) = (
        Arc::new(Mutex::new(0usize)),
        Arc::new(Mutex::new(0usize)),
        Arc::new(Mutex::new(0usize)),
    );
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (url, root, answered, stop) = (url.to_owned(), root.clone(), answered.clone(), stop.clone());
            let (before, late, pulls_after) = (before.clone(), late.clone(), pulls_after.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                // Bounded: a request cap besides the stop flag.
                for _ in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let started = Instant::now();
                    let body = json!({ "query": PULL, "variables": { "w": format!("c{w}"), "f": root, "n": 50 } });
                    let got: Value = client.post(&url).json(&body).send().await.expect("pull").json().await.expect("json");
                    let ids = claimed_ids(&got).len();
                    match *answered.lock().unwrap() {
                        Some(at) if started > at => {
                            *pulls_after.lock().unwrap() += 1;
                            *late.lock().unwrap() += ids;
                        }
                        Some(_) => {}
                        None => *before.lock().unwrap() += ids,
                    }
                }
            })
        })
        .collect();
    // Cancel once the workers have taken a tenth of it (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(60);
    while *before.lock().unwrap() < n / 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    let got = post(json!({ "query": "mutation($id: ID!) { cancelExecution(id: $id) }", "variables": { "id": root } })).await;
    let answer_ms = t.elapsed().as_secs_f64() * 1000.0;
    *answered.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("worker");
    }
    let pulled_before = *before.lock().unwrap();
    let (late, pulls_after) = (*late.lock().unwrap(), *pulls_after.lock().unwrap());
    Cancelled {
        answer_ms,
        stopped: got["data"]["cancelExecution"].as_u64().unwrap_or(0),
        pulled_before,
        late,
        pulls_after,
    }
}

/// The batch figures of both backends.
struct Batches {
    pg_create: Run,
    sq_create: Run,
    /// (executions completed/s, each exactly once?)
    pg_rounds: (f64, bool),
    sq_rounds: (f64, bool),
    sq_rounds_size: usize,
}

/// One batched-round drain per round (flows `{prefix}{round}`): the
/// median rate, and whether every round completed each execution once.
async fn batched_drains(url: &str, prefix: &str, s: &Sizes) -> (f64, bool) {
    let (mut rates, mut once) = (Vec::new(), true);
    for round in 0..s.rounds {
        let (rate, each_once) =
            batched_rounds(url, &format!("{prefix}{round}"), 8, s.batched).await;
        rates.push(rate);
        once &= each_once;
    }
    (median(rates), once)
}

async fn wake_latency(url: &str, n: usize) -> Vec<f64> {
    let claimed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (url, claimed, stop, tx) = (url.to_owned(), claimed.clone(), stop.clone(), tx.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let body = json!({ "query": PULL, "variables": { "w": format!("waiter{w}"), "f": "wake", "n": 1, "wait": 2000 } });
                    let got: Value = client.post(&url).json(&body).send().await.expect("pull").json().await.expect("json");
                    let at = Instant::now();
                    for id in claimed_ids(&got) {
                        claimed.lock().unwrap().insert(id.clone(), at);
                        let _ = tx.send(id);
                    }
                }
            })
        })
        .collect();
    // Let every worker reach its first (empty) wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for i in 0..n {
        let id = format!("wake-{i}");
        let body = json!({
            "query": "mutation($id: ID!) { createExecution(input: { id: $id, flowId: \"wake\", ownerId: \"bench\" }) { id } }",
            "variables": { "id": id }
        });
        client
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("create")
            .bytes()
            .await
            .expect("body");
        let created = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .ok()
            .flatten();
        assert_eq!(
            got.as_deref(),
            Some(id.as_str()),
            "each created execution is claimed"
        );
        let at = claimed.lock().unwrap()[&id];
        latencies.push(at.saturating_duration_since(created).as_secs_f64() * 1000.0);
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("waiter");
    }
    latencies
}

/// What the time section measured.
struct TimeInQueue {
    /// Drains (executions/s), due executions alone and with waiting ones.
    clean: f64,
    crowded: f64,
    each_once: bool,
    /// Due time → handed out to a waiting worker, ms.
    due_latency: Vec<f64>,
    /// The next pull after a priority-10 create handed it out; its call ms.
    priority_next: bool,
    priority_ms: f64,
}

impl TimeInQueue {
    fn report(&self, s: &Sizes) -> String {
        let l = &self.due_latency;
        format!(
            "Time in the queue (issue #29): pulls of limit 50, 8 workers, draining {} due executions: **{:.0}/s** alone, \
             **{:.0}/s** beside {} due next week and {} waiting out a backoff in the same flow: **{:.2}×** (each once: {}). \
             {} executions due at spread times, 8 workers waiting with `waitMs`: handed out p50 **{:.1} ms**, p99 **{:.1} ms**, \
             max {:.1} ms after their `runAt`. With {} priority-0 executions queued, a priority-10 one created last: \
             handed out by the next pull: **{}** ({:.2} ms).\n\n",
            s.due_drain, self.clean, self.crowded, s.not_due, s.not_due, self.crowded / self.clean,
            if self.each_once { "yes" } else { "**no**" },
            l.len(), pct(l.clone(), 0.5), pct(l.clone(), 0.99), pct(l.clone(), 1.0),
            s.prio_backlog, if self.priority_next { "yes" } else { "**no**" }, self.priority_ms,
        )
    }
}

async fn time_in_the_queue(url: &str, s: &Sizes) -> TimeInQueue {
    step("time in the queue: drains beside executions not due");
    let (mut clean, mut crowded, mut each_once) = (Vec::new(), Vec::new(), true);
    for round in 0..s.rounds {
        let (rate, once, _) = drain(url, &format!("due-clean-r{round}"), 8, 50, s.due_drain).await;
        clean.push(rate);
        each_once &= once;
        let (rate, once, _) =
            drain(url, &format!("due-crowded-r{round}"), 8, 50, s.due_drain).await;
        crowded.push(rate);
        each_once &= once;
    }
    step("time in the queue: executions due at spread times");
    let due_latency = due_latency(url, s.due_spread).await;
    step("time in the queue: a priority-10 execution behind a backlog");
    let client = reqwest::Client::new();
    let create = json!({
        "query": "mutation { createExecution(input: { id: \"urgent\", flowId: \"prio\", ownerId: \"bench\", priority: 10 }) { id } }"
    });
    client
        .post(url)
        .json(&create)
        .send()
        .await
        .expect("create")
        .bytes()
        .await
        .expect("body");
    let pull = json!({ "query": PULL, "variables": { "w": "prio", "f": "prio", "n": 1 } });
    let t = Instant::now();
    let got: Value = client
        .post(url)
        .json(&pull)
        .send()
        .await
        .expect("pull")
        .json()
        .await
        .expect("json");
    let priority_ms = t.elapsed().as_secs_f64() * 1000.0;
    TimeInQueue {
        clean: median(clean),
        crowded: median(crowded),
        each_once,
        due_latency,
        priority_next: claimed_ids(&got) == ["urgent"],
        priority_ms,
    }
}

/// `n` executions due at spread times (one every 15 ms, from a second
/// on), 8 workers waiting for work: how long after its `runAt` each was
/// handed out (ms, by this machine's clock, which the server shares).
async fn due_latency(url: &str, n: usize) -> Vec<f64> {
    let start = chrono::Utc::now() + chrono::Duration::seconds(1);
    let due: HashMap<String, chrono::DateTime<chrono::Utc>> = (0..n)
        .map(|i| {
            (
                format!("due-{i}"),
                start + chrono::Duration::milliseconds(15 * i as i64),
            )
        })
        .collect();
    let client = reqwest::Client::new();
    let inputs: Vec<Value> = due
        .iter()
        .map(|(id, at)| json!({ "id": id, "flowId": "due", "ownerId": "bench", "runAt": at.to_rfc3339() }))
        .collect();
    let got: Value = client
        .post(url)
        .json(&json!({ "query": CREATE_MANY, "variables": { "inputs": inputs } }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert!(got["errors"].is_null(), "{got}");
    let late = Arc::new(Mutex::new(Vec::new()));
    let deadline =
        Instant::now() + Duration::from_secs(1) + Duration::from_millis(15 * n as u64 + 5_000);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (url, late, due) = (url.to_owned(), late.clone(), due.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while Instant::now() < deadline && late.lock().unwrap().len() < due.len() {
                    let body = json!({ "query": PULL, "variables": { "w": format!("due{w}"), "f": "due", "n": 1, "wait": 1000 } });
                    let got: Value = client.post(&url).json(&body).send().await.expect("pull").json().await.expect("json");
                    let now = chrono::Utc::now();
                    for id in claimed_ids(&got) {
                        let ms = (now - due[&id]).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                        late.lock().unwrap().push(ms);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("waiting worker");
    }
    let late = late.lock().unwrap().clone();
    assert_eq!(late.len(), n, "every execution handed out once due");
    assert!(
        late.iter().all(|ms| *ms >= 0.0),
        "handed out before its runAt: {late:?}"
    );
    late
}

#[allow(clippy::too_many_arguments)]
fn report(
    s: &Sizes,
    by_id: &[(usize, Run, f64)],
    pulls: &[(usize, usize, f64, bool, f64, f64)],
    backlog: (f64, f64),
    wake: &[f64],
    sqlite: (f64, bool),
    durability: &[(&str, usize, Run)],
    batches: &Batches,
    smoke: bool,
) -> String {
    let mut out = String::new();
    out.push_str("## Worker queue (`cargo bench --bench queue`)\n\n");
    out.push_str(&format!(
        "One run: a throwaway PostgreSQL 15 (`synchronous_commit=off`) and the release server over loopback HTTP, \
         driven by the bench's own bounded client (reqwest). Medians of {} rounds where rounds apply.\n\n",
        s.rounds
    ));
    out.push_str("| scenario | execstore | p50 ms | p99 ms | floor (pgbench, same statement) | execstore / floor |\n|---|---:|---:|---:|---:|---:|\n");
    for (conns, run, floor) in by_id {
        out.push_str(&format!(
            "| claimExecution by id @{conns} | {:.0}/s | {:.2} | {:.2} | {:.0}/s | **{:.2}×** |\n",
            run.rps,
            run.p50_ms,
            run.p99_ms,
            floor,
            run.rps / floor
        ));
    }
    let by_id_8 = by_id
        .iter()
        .find(|(c, _, _)| *c == 8)
        .map(|(_, r, _)| r.rps)
        .unwrap_or(f64::NAN);
    out.push_str("\n| pull (8 workers, draining) | executions/s | each once | call p50 first 10 % ms | call p50 last 10 % ms | vs claimExecution @8 |\n|---|---:|---|---:|---:|---:|\n");
    for (limit, size, rate, once, start, end) in pulls {
        out.push_str(&format!(
            "| claimNextExecutions limit {limit}, {size} executions | {rate:.0} | {} | {start:.2} | {end:.2} | **{:.2}×** |\n",
            if *once { "yes" } else { "**no**" },
            rate / by_id_8
        ));
    }
    out.push_str(&format!(
        "\nPer call (1 worker, limit 1): p50 **{:.2} ms** with {} leased-but-CREATED executions ahead in the same flow, \
         **{:.2} ms** without: **{:.2}×**.\n\n",
        backlog.1, s.backlog, backlog.0, backlog.1 / backlog.0
    ));
    out.push_str(&format!(
        "Wake-up latency (8 workers waiting with `waitMs`, {} executions created one at a time; from the create's answer to the claim's): \
         p50 **{:.2} ms**, p99 **{:.2} ms**, max {:.2} ms.\n\n",
        wake.len(), pct(wake.to_vec(), 0.5), pct(wake.to_vec(), 0.99), pct(wake.to_vec(), 1.0)
    ));
    out.push_str(&format!(
        "SQLite (a file, default settings: `synchronous=full`, group commit): claimNextExecutions limit 1, 8 workers, {} executions: **{:.0} executions/s** (each once: {}).\n\n",
        s.sqlite_drain, sqlite.0, if sqlite.1 { "yes" } else { "**no**" }
    ));
    let once = |ok: bool| if ok { "yes" } else { "**no**" };
    out.push_str(&format!(
        "Batches (`createExecutions` of {CREATE_BATCH} from 2 clients; the batched worker round: 8 workers, each pulling 50 then finishing them in one `finishExecutions`):\n\n\
         | scenario | PostgreSQL | SQLite (`synchronous=full`) |\n|---|---:|---:|\n\
         | createExecutions of {CREATE_BATCH}: executions created/s (request p50) | **{:.0}** ({:.1} ms) | **{:.0}** ({:.1} ms) |\n\
         | batched rounds, 8 workers: executions completed/s ({} / {} executions; each once) | **{:.0}** ({}) | **{:.0}** ({}) |\n\n",
        batches.pg_create.rps, batches.pg_create.p50_ms, batches.sq_create.rps, batches.sq_create.p50_ms,
        s.batched, batches.sq_rounds_size,
        batches.pg_rounds.0, once(batches.pg_rounds.1), batches.sq_rounds.0, once(batches.sq_rounds.1),
    ));
    out.push_str("SQLite durability (`EXECSTORE_SQLITE_SYNCHRONOUS`; `createExecution` over HTTP, a file on this machine's disk):\n\n\
                  | setting | clients | creates/s | p50 ms | p99 ms | vs normal |\n|---|---:|---:|---:|---:|---:|\n");
    for (mode, conns, run) in durability {
        let normal = durability
            .iter()
            .find(|(m, c, _)| *m == "normal" && c == conns)
            .map_or(f64::NAN, |(_, _, r)| r.rps);
        out.push_str(&format!(
            "| {mode} | {conns} | {:.0} | {:.2} | {:.2} | **{:.2}×** |\n",
            run.rps,
            run.p50_ms,
            run.p99_ms,
            run.rps / normal
        ));
    }
    out.push('\n');
    if smoke {
        out.push_str("(smoke run: tiny sizes, not a measurement)\n");
    }
    out
}
