//! Live events against their targets, in ONE run: the release server on a
//! throwaway PostgreSQL (and a SQLite file for the write cost).
//!
//! - fan-out: 10,000 `executionEvents` subscriptions (graphql-transport-ws,
//!   10 per connection on 1,000 connections) over 1,000 roots while
//!   1,000 events/s are written: each event delivered exactly once to each
//!   subscriber of its root; delivery latency; the server's RSS;
//! - catch-up: a subscriber 100,000 events behind resumes from its cursor;
//! - write cost: `createExecution` throughput with the event log against the
//!   same server with the log's triggers switched off, both backends.
//!
//! ```text
//! cargo bench --bench events              # full run, rewrites its section of BENCHMARKS.md
//! cargo bench --bench events -- --smoke   # tiny sizes, prints only
//! ```
//!
//! Every load loop is bounded (a deadline and a count) and talks only to
//! 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy)]
struct Sizes {
    connections: usize,
    per_connection: usize,
    roots: usize,
    rate: usize,
    seconds: usize,
    behind: usize,
    write_seconds: f64,
    rounds: usize,
}

const FULL: Sizes = Sizes {
    connections: 1000,
    per_connection: 10,
    roots: 1000,
    rate: 1000,
    seconds: 10,
    behind: 100_000,
    write_seconds: 4.0,
    rounds: 3,
};

const SMOKE: Sizes = Sizes {
    connections: 10,
    per_connection: 2,
    roots: 10,
    rate: 100,
    seconds: 1,
    behind: 2_000,
    write_seconds: 0.5,
    rounds: 1,
};

const SECTION: &str = "events";

/// Per execution id: which subscription received its event, and when.
type Receipts = Arc<Mutex<HashMap<String, Vec<(usize, Instant)>>>>;
const CREATE: &str = "mutation($i: CreateExecutionInput!) { createExecution(input: $i) { id } }";

fn main() {
    bench_main(SECTION, |smoke| {
        run(if smoke { SMOKE } else { FULL }, smoke)
    });
}

async fn run(sizes: Sizes, smoke: bool) -> String {
    let binary = build_release_server();
    let (_cluster, url, db) = bench_database(&[]).await;
    let (server, api) = start_execstore(&binary, &url).await;
    let pid = server.child.id();
    let ws_url = api.replace("http://", "ws://") + "/ws";
    let mut out = String::from("## Live events (`cargo bench --bench events`)\n\n");
    out.push_str(
        "One run, release server, 2 cores shared by the server, PostgreSQL 15 and the load; \
         latencies measured from the start of the writing request to the subscriber's receipt \
         (commit to receipt is at most that).\n\n",
    );

    // ---- fan-out
    step("fan-out: roots and subscriptions");
    exec(
        &db,
        &format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, created_at, updated_at, failure_count) \
             SELECT 'root-' || i, 'bench', 'bench', 'root-' || i, 'running', 0, now(), now(), 0 \
             FROM generate_series(0, {}) i",
            sizes.roots - 1
        ),
    )
    .await;
    let receipts: Receipts = Arc::default();
    let mut readers = Vec::new();
    for c in 0..sizes.connections {
        let roots: Vec<usize> = (0..sizes.per_connection)
            .map(|j| (c * sizes.per_connection + j) % sizes.roots)
            .collect();
        let mut ws = connect(&ws_url).await;
        for (j, root) in roots.iter().enumerate() {
            let subscribe = json!({"id": format!("{j}"), "type": "subscribe", "payload": {
                "query": "subscription($r: ID!) { executionEvents(rootExecutionId: $r) { executionId cursor } }",
                "variables": { "r": format!("root-{root}") },
            }});
            ws.send(Message::text(subscribe.to_string()))
                .await
                .expect("subscribe");
        }
        let receipts = receipts.clone();
        let base = c * sizes.per_connection;
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(m) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if m["type"] != "next" {
                    continue;
                }
                let at = Instant::now();
                let sub = base
                    + m["id"]
                        .as_str()
                        .and_then(|s| s.parse::<usize>().ok())
                        .unwrap_or(0);
                let id = m["payload"]["data"]["executionEvents"]["executionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                receipts
                    .lock()
                    .unwrap()
                    .entry(id)
                    .or_default()
                    .push((sub, at));
            }
        }));
    }
    let subscriptions = sizes.connections * sizes.per_connection;
    wait_for_subscribers(&api, subscriptions).await;
    let rss_before = current_rss_mb(pid);

    step("fan-out: writing");
    let client = reqwest::Client::new();
    let total = sizes.rate * sizes.seconds;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, api, sent) = (client.clone(), api.clone(), sent.clone());
            tokio::spawn(async move {
                let mut n = w;
                while n < total {
                    // Paced: event n is due at n / rate seconds.
                    let due = started + Duration::from_secs_f64(n as f64 / sizes.rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let id = format!("ev-{n}");
                    let input = json!({"id": id, "flowId": "bench", "ownerId": "bench",
                        "parentExecutionId": format!("root-{}", n % sizes.roots)});
                    sent.lock().unwrap().insert(id, Instant::now());
                    let _ = client
                        .post(&api)
                        .json(&json!({"query": CREATE, "variables": {"i": input}}))
                        .send()
                        .await;
                    n += 8;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let wrote_in = started.elapsed().as_secs_f64();
    // Every event to each of its root's subscribers: wait (bounded).
    let per_root = subscriptions / sizes.roots;
    let expected = total * per_root;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: usize = receipts.lock().unwrap().values().map(Vec::len).sum();
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // duplicates, if any, arrive too
    let peak = peak_rss_mb(pid);
    let (mut latencies, mut exact, mut missing, mut doubled) = (Vec::new(), 0, 0, 0);
    {
        let receipts = receipts.lock().unwrap();
        let sent = sent.lock().unwrap();
        for n in 0..total {
            let id = format!("ev-{n}");
            let got = receipts.get(&id).cloned().unwrap_or_default();
            let mut subs: Vec<usize> = got.iter().map(|(s, _)| *s).collect();
            subs.sort();
            let distinct = {
                let mut d = subs.clone();
                d.dedup();
                d.len()
            };
            doubled += subs.len() - distinct;
            missing += per_root.saturating_sub(distinct);
            if distinct == per_root && subs.len() == per_root {
                exact += 1;
            }
            if let Some(t0) = sent.get(&id) {
                latencies.extend(
                    got.iter()
                        .map(|(_, at)| at.duration_since(*t0).as_secs_f64() * 1000.0),
                );
            }
        }
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    for r in readers {
        r.abort();
    }
    out.push_str(&format!(
        "### Fan-out\n\n{subscriptions} subscriptions on {} WebSocket connections over {} roots; {total} events written \
         at {:.0}/s (target {}/s).\n\n\
         | figure | value | target |\n|---|---|---|\n\
         | events delivered exactly once to each of their root's {per_root} subscribers | {exact} of {total} (missing {missing}, doubled {doubled}) | all |\n\
         | delivery p50 | {:.1} ms | ≤ 5 ms |\n| delivery p99 | {:.1} ms | ≤ 50 ms |\n\
         | server RSS, subscribers idle → peak | {rss_before:.0} → {peak:.0} MB | ≤ 200 MB |\n\n",
        sizes.connections,
        sizes.roots,
        total as f64 / wrote_in,
        sizes.rate,
        pct(0.5),
        pct(0.99),
    ));

    // ---- catch-up
    step("catch-up: a subscriber far behind");
    let cursor = post(&api, &json!({"query": "{ eventCursor }"})).await["data"]["eventCursor"]
        .as_str()
        .expect("eventCursor")
        .to_owned();
    exec(
        &db,
        &format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count) \
             SELECT 'behind-' || i, 'bench', 'bench', 'root-0', 'root-0', 'created', 1, now(), now(), 0 \
             FROM generate_series(1, {}) i",
            sizes.behind
        ),
    )
    .await;
    let mut ws = connect(&ws_url).await;
    let subscribe = json!({"id": "c", "type": "subscribe", "payload": {
        "query": "subscription($r: ID!, $a: String) { executionEvents(rootExecutionId: $r, after: $a) { executionId cursor execution { id status } } }",
        "variables": { "r": "root-0", "a": cursor },
    }});
    let t = Instant::now();
    ws.send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe");
    let mut caught = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while caught < sizes.behind && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.contains("\"next\"") => caught += 1,
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    out.push_str(&format!(
        "### Catch-up\n\nA subscriber {} events behind resumes from its cursor: {caught} received in {secs:.2} s, \
         **{:.0} events/s** (target ≥ 50,000/s).\n\n",
        sizes.behind,
        caught as f64 / secs
    ));
    drop(ws);
    drop(server);

    // ---- write cost
    step("write cost: createExecution with and without the log");
    let (server, api) = start_execstore(&binary, &url).await;
    let pg = write_cost(&api, sizes, "pg", &db, PG_OFF, PG_ON).await;
    drop(server);
    let dir = std::env::temp_dir().join(format!("execstore-events-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let (server, api) = start_execstore(&binary, &sqlite_url).await;
    let sqlite_db = sea_orm::Database::connect(&sqlite_url)
        .await
        .expect("sqlite");
    let sqlite = write_cost(&api, sizes, "sqlite", &sqlite_db, SQLITE_OFF, SQLITE_ON).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    out.push_str(&format!(
        "### Write cost of the log\n\n`createExecution`, 8 clients, {} s per round, {} rounds alternating, \
         medians; \"without\" is the same server with the log's triggers switched off.\n\n\
         | backend | with the log | without | ratio | target |\n|---|---|---|---|---|\n\
         | PostgreSQL | {:.0}/s | {:.0}/s | {:.2} | ≥ 0.85 |\n| SQLite (synchronous=full) | {:.0}/s | {:.0}/s | {:.2} | ≥ 0.85 |\n",
        sizes.write_seconds,
        sizes.rounds,
        pg.0,
        pg.1,
        pg.0 / pg.1,
        sqlite.0,
        sqlite.1,
        sqlite.0 / sqlite.1,
    ));
    if smoke {
        out.push_str("\n(smoke run: tiny sizes, not a measurement)\n");
    }
    out
}

const PG_OFF: &[&str] = &[
    "ALTER TABLE executions DISABLE TRIGGER executions_logged_insert",
    "ALTER TABLE executions DISABLE TRIGGER executions_logged_update",
];
const PG_ON: &[&str] = &[
    "ALTER TABLE executions ENABLE TRIGGER executions_logged_insert",
    "ALTER TABLE executions ENABLE TRIGGER executions_logged_update",
];
const SQLITE_OFF: &[&str] = &[
    "DROP TRIGGER executions_logged_insert",
    "DROP TRIGGER executions_logged_update",
];
const SQLITE_ON: &[&str] = &[
    "CREATE TRIGGER executions_logged_insert AFTER INSERT ON executions BEGIN \
     INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind) \
     VALUES (NEW.root_execution_id, NEW.id, NEW.owner_id, 'created'); END",
    "CREATE TRIGGER executions_logged_update AFTER UPDATE ON executions BEGIN \
     INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind) \
     VALUES (NEW.root_execution_id, NEW.id, NEW.owner_id, 'updated'); END",
];

/// (with the log, without) createExecution/s, medians of alternating rounds.
async fn write_cost(
    api: &str,
    sizes: Sizes,
    tag: &'static str,
    db: &sea_orm::DatabaseConnection,
    off: &[&str],
    on: &[&str],
) -> (f64, f64) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        for logged in [true, false] {
            for sql in if logged { on } else { off } {
                if !(logged && round == 0) {
                    exec(db, sql).await;
                }
            }
            let prefix = format!("{tag}-{round}-{logged}");
            let make: MakeBody = Arc::new(
                move |n| json!({"query": CREATE, "variables": {"i": {"id": format!("{prefix}-{n}"), "flowId": "w", "ownerId": "bench"}}}),
            );
            let accept: Accept = Arc::new(|b: &[u8]| !b.windows(8).any(|w| w == b"\"errors\""));
            let r = drive(api, 8, sizes.write_seconds, 1_000_000, make, accept).await;
            if logged {
                with.push(r.rps)
            } else {
                without.push(r.rps)
            }
        }
    }
    for sql in on {
        exec(db, sql).await;
    }
    (median(with), median(without))
}

async fn connect(
    url: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = url.into_client_request().expect("ws request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    ws.send(Message::text(
        json!({"type": "connection_init", "payload": {}}).to_string(),
    ))
    .await
    .expect("init");
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("no connection_ack");
        };
        if text.contains("connection_ack") {
            return ws;
        }
    }
}

/// Waits (bounded) until the server counts `n` live event subscribers.
async fn wait_for_subscribers(api: &str, n: usize) {
    let metrics = api.replace("/graphql", "/metrics");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = reqwest::get(&metrics)
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        let live = text
            .lines()
            .find(|l| l.starts_with("execstore_event_subscribers "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if live as usize >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {live} of {n} subscribers joined"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
