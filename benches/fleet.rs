//! What the worker fleet feels from everything else, in ONE run on a
//! throwaway PostgreSQL primary with a streaming standby:
//!
//! - heavy readers: `claimExecution` by id (4 workers) alone, then with 16
//!   clients reading the 11,111-node tree flat out, with the read gate
//!   (`EXECSTORE_CONCURRENT_READS`, default) and without it (`0`);
//! - the standby's routing overhead: tree and feed reads through a standby
//!   against the same reads on the primary alone;
//! - retention: deleting 1,000,000 finished executions while 8 workers
//!   claim, against the same claims without the purge.
//!
//! ```text
//! cargo bench --bench fleet              # full run, rewrites its section of BENCHMARKS.md
//! cargo bench --bench fleet -- --smoke   # tiny sizes, prints only
//! ```
//!
//! Every load loop is bounded (a deadline and a request cap) and talks only
//! to 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use execstore::store::{DbOptions, ExecutionStore};
use serde_json::json;

#[derive(Clone, Copy)]
struct Sizes {
    fanout: usize,
    depth: usize,
    claim_pool: usize,
    seconds: f64,
    rounds: usize,
    purge_runs: usize,
    purge_run_size: usize,
}

const FULL: Sizes = Sizes {
    fanout: 10,
    depth: 4,
    claim_pool: 200_000,
    seconds: 5.0,
    rounds: 3,
    purge_runs: 10_000,
    purge_run_size: 100,
};

const SMOKE: Sizes = Sizes {
    fanout: 3,
    depth: 2,
    claim_pool: 5_000,
    seconds: 0.5,
    rounds: 1,
    purge_runs: 20,
    purge_run_size: 10,
};

const SECTION: &str = "fleet";
const CLAIM: &str = "mutation($id: ID!) { claimExecution(executionId: $id, workerId: \"bench\", timeoutMs: 600000) { acquired } }";
const FEED: &str = "{ childFeed(rootExecutionId: \"tree\", first: 50) { edges { node { id status createdAt } } } }";
const FIELDS: &str =
    "id status flowId parentExecutionId executionDepth createdAt startedAt completedAt";

fn main() {
    bench_main(SECTION, |smoke| {
        run(if smoke { SMOKE } else { FULL }, smoke)
    });
}

fn tree_query(depth: usize) -> String {
    let mut inner = FIELDS.to_owned();
    for _ in 0..depth {
        inner = format!("{FIELDS} children(first: 1000) {{ {inner} }}");
    }
    format!("{{ execution(id: \"tree\") {{ {inner} }} }}")
}

async fn run(sizes: Sizes, smoke: bool) -> String {
    let binary = build_release_server();
    let (cluster, url, db) = bench_database(&[]).await;
    let base = "timestamptz '2026-01-01 00:00:00+00'";
    step("loading the tree, the claim pool and the runs to purge");
    exec(&db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         WITH RECURSIVE t(id, parent, depth) AS (
           SELECT 'tree'::text, NULL::text, 0
           UNION ALL SELECT t.id || '.' || g, t.id, t.depth + 1 FROM t, generate_series(0, {}) g WHERE t.depth < {})
         SELECT id, 'tree-flow', 'bench', 'tree', parent, 'completed', depth,
                {base} + row_number() OVER (ORDER BY id) * interval '1 ms', {base}, 0 FROM t",
        sizes.fanout - 1, sizes.depth)).await;
    exec(&db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'cb-' || i, 'claims', 'bench', 'cb-' || i, 'created', 0, {base} + i * interval '1 ms', {base}, 0
         FROM generate_series(1, {}) i", sizes.claim_pool)).await;
    exec(&db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, completed_at, failure_count)
         SELECT 'old-' || r || CASE WHEN c = 0 THEN '' ELSE '.' || c END, 'old', 'bench', 'old-' || r,
                CASE WHEN c = 0 THEN NULL ELSE 'old-' || r END, 'completed', CASE WHEN c = 0 THEN 0 ELSE 1 END,
                {base} + r * interval '1 ms', {base}, {base}, 0
         FROM generate_series(1, {}) r, generate_series(0, {}) c ORDER BY r, c",
        sizes.purge_runs, sizes.purge_run_size - 1)).await;
    exec(&db, "VACUUM ANALYZE").await;
    step("starting a streaming standby");
    let standby = cluster.start_standby().expect("standby");
    let standby_url = standby.url("bench");
    let next_claim = Arc::new(AtomicUsize::new(1));
    let mut out = String::from("## The fleet under load (`cargo bench --bench fleet`)\n\n");
    out.push_str(
        "One run, release servers, one throwaway PostgreSQL 15 primary and a streaming standby, \
         2 cores shared by everything; medians of the rounds.\n\n",
    );

    // ---- heavy readers
    let mut rows = Vec::new();
    for (label, gate) in [
        ("read gate on (default: cores − 1 = 1)", None),
        ("read gate off (0)", Some("0")),
    ] {
        let env: Vec<(&str, &str)> = gate
            .map(|g| vec![("EXECSTORE_CONCURRENT_READS", g)])
            .unwrap_or_default();
        let (server, api) = start_execstore_with(&binary, &url, &env).await;
        step(&format!("claims alone and under 16 tree readers, {label}"));
        let (mut alone, mut loaded, mut tree_rps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes.rounds {
            alone.push(claims(&api, 4, sizes.seconds, &next_claim).await);
            let stop = Arc::new(AtomicBool::new(false));
            let readers = read_flat_out(&api, 16, tree_query(sizes.depth), stop.clone());
            tokio::time::sleep(Duration::from_millis(500)).await; // readers saturate first
            loaded.push(claims(&api, 4, sizes.seconds, &next_claim).await);
            stop.store(true, Ordering::SeqCst);
            let done = readers.await.expect("readers");
            tree_rps.push(done as f64 / (sizes.seconds + 0.5));
        }
        drop(server);
        let (alone, loaded) = (median_run(&alone), median_run(&loaded));
        rows.push(format!(
            "| {label} | {:.1} / {:.1} | {:.1} / {:.1} | **{:.2}×** | {:.1} |",
            alone.p50_ms,
            alone.p99_ms,
            loaded.p50_ms,
            loaded.p99_ms,
            loaded.p99_ms / alone.p99_ms,
            median(tree_rps),
        ));
    }
    out.push_str(&format!(
        "### Claims under heavy readers\n\n`claimExecution` by id, 4 workers, {} s per round; readers: 16 clients \
         requesting the {}-node tree back to back.\n\n\
         | server | claims alone p50 / p99 ms | with readers p50 / p99 ms | p99 ratio (target ≤ 2×) | tree answers/s |\n|---|---|---|---|---|\n{}\n\n",
        sizes.seconds,
        (0..=sizes.depth).map(|d| sizes.fanout.pow(d as u32)).sum::<usize>(),
        rows.join("\n"),
    ));

    // ---- standby routing overhead
    step("reads on the primary alone, then through the standby");
    let (server, api) = start_execstore(&binary, &url).await;
    let on_primary = reads(&api, sizes).await;
    drop(server);
    let (server, api) =
        start_execstore_with(&binary, &url, &[("DATABASE_READ_URL", &standby_url)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the watcher's first probes
    let through_standby = reads(&api, sizes).await;
    let metrics = reqwest::get(api.replace("/graphql", "/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let standby_reads: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("execstore_reads_total{target=\"standby-0\"}"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum();
    drop(server);
    out.push_str(&format!(
        "### Reads through a standby\n\nThe same reads, 1 client, on a server reading the primary and on one with \
         `DATABASE_READ_URL` set to the standby ({standby_reads:.0} requests counted as read on the standby).\n\n\
         | read | primary p50 ms | standby p50 ms | ratio (target ≤ 1.1) |\n|---|---|---|---|\n\
         | tree ({} levels) | {:.1} | {:.1} | **{:.2}** |\n| feed first page | {:.2} | {:.2} | **{:.2}** |\n\n",
        sizes.depth,
        on_primary.0, through_standby.0, through_standby.0 / on_primary.0,
        on_primary.1, through_standby.1, through_standby.1 / on_primary.1,
    ));

    // ---- retention
    step("claims with and without a retention purge");
    let (server, api) = start_execstore(&binary, &url).await;
    let without = median_run(&{
        let mut runs = Vec::new();
        for _ in 0..sizes.rounds {
            runs.push(claims(&api, 8, sizes.seconds, &next_claim).await);
        }
        runs
    });
    let purger = ExecutionStore::new(
        execstore::store::connect(
            &url,
            &DbOptions {
                max_connections: 2,
                statement_timeout: Duration::from_secs(3600),
                ..DbOptions::default()
            },
        )
        .await
        .expect("purger connection"),
    );
    let total = sizes.purge_runs * sizes.purge_run_size;
    let purge = tokio::spawn(async move {
        let t = Instant::now();
        let deleted = purger
            .runs()
            .delete_finished_runs(execstore::store::now(), execstore::store::RUNS_BATCH)
            .await
            .expect("purge");
        (deleted, t.elapsed().as_secs_f64())
    });
    let mut during = Vec::new();
    while !purge.is_finished() {
        during.push(claims(&api, 8, sizes.seconds.min(2.0), &next_claim).await);
    }
    let (deleted, secs) = purge.await.expect("purge task");
    drop(server);
    let during = median_run(&during);
    out.push_str(&format!(
        "### Retention\n\n{} finished runs of {} executions ({total} executions) deleted by run retention while 8 workers \
         claim by id.\n\n\
         | figure | value | target |\n|---|---|---|\n\
         | executions deleted | {} in {secs:.1} s: **{:.0}/s** | ≥ 20,000/s |\n\
         | claims p50 / p99 without the purge | {:.1} / {:.1} ms | |\n\
         | claims p50 / p99 during the purge | {:.1} / {:.1} ms | p99 ≤ 1.5× |\n\
         | p99 ratio | **{:.2}×** | ≤ 1.5× |\n",
        sizes.purge_runs, sizes.purge_run_size,
        deleted.executions, deleted.executions as f64 / secs,
        without.p50_ms, without.p99_ms, during.p50_ms, during.p99_ms,
        during.p99_ms / without.p99_ms,
    ));
    if smoke {
        out.push_str("\n(smoke run: tiny sizes, not a measurement)\n");
    }
    drop(standby);
    out
}

/// `conns` workers claim fresh executions by id for `seconds`.
async fn claims(api: &str, conns: usize, seconds: f64, next: &Arc<AtomicUsize>) -> Run {
    let ids = next.clone();
    let make: MakeBody = Arc::new(move |_| {
        let n = ids.fetch_add(1, Ordering::SeqCst);
        json!({ "query": CLAIM, "variables": { "id": format!("cb-{n}") } })
    });
    let accept: Accept = Arc::new(|b: &[u8]| b.windows(15).any(|w| w == b"\"acquired\":true"));
    drive(api, conns, seconds, 1_000_000, make, accept).await
}

/// `conns` clients send `query` back to back until `stop`; how many answers.
fn read_flat_out(
    api: &str,
    conns: usize,
    query: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    let api = api.to_owned();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let done = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..conns)
            .map(|_| {
                let (client, api, query, stop, done) = (
                    client.clone(),
                    api.clone(),
                    query.clone(),
                    stop.clone(),
                    done.clone(),
                );
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        let answered = client
                            .post(&api)
                            .json(&json!({ "query": query }))
                            .send()
                            .await;
                        if let Ok(response) = answered {
                            let _ = response.bytes().await;
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        done.load(Ordering::SeqCst)
    })
}

/// p50 of the tree and of the feed's first page, 1 client (medians of rounds).
async fn reads(api: &str, sizes: Sizes) -> (f64, f64) {
    let (mut tree, mut feed) = (Vec::new(), Vec::new());
    let ok: Accept = Arc::new(|b: &[u8]| !b.windows(8).any(|w| w == b"\"errors\""));
    for _ in 0..sizes.rounds {
        let q = tree_query(sizes.depth);
        tree.push(
            drive(
                api,
                1,
                sizes.seconds,
                10_000,
                Arc::new(move |_| json!({ "query": q })),
                ok.clone(),
            )
            .await
            .p50_ms,
        );
        feed.push(
            drive(
                api,
                1,
                sizes.seconds,
                100_000,
                Arc::new(|_| json!({ "query": FEED })),
                ok.clone(),
            )
            .await
            .p50_ms,
        );
    }
    (median(tree), median(feed))
}
