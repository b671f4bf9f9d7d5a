//! The explorer on a run of a million executions, in headless Chromium
//! against the release server, on PostgreSQL and SQLite:
//!
//! - the home page listing 1,000 flows (from navigation to rows drawn);
//! - opening the run (from navigation to its first rows drawn);
//! - "Failed": its first page listed (in the page, and the server's own
//!   time for that query) and a failure revealed in the tree;
//! - scrolling one parent's 1,000 children end to end (windows loaded on
//!   demand; the most rows ever in the DOM).
//!
//! The run: a root with 1,000 children of 1,000 children each, 1 % failed.
//!
//! ```text
//! cargo bench --bench explorer              # full run, rewrites its section of BENCHMARKS.md
//! cargo bench --bench explorer -- --smoke   # tiny sizes, prints only
//! ```
//!
//! Every request goes to 127.0.0.1 (the browser refuses any other host).

#[path = "../tests/suite/browser.rs"]
#[allow(dead_code)]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::{eval, wait_until, Chromium};
use common::*;
use execstore::store::{self, CreateExecution, DbOptions, ExecutionStatus, ExecutionStore, Scope};
use serde_json::{json, Value};

#[derive(Clone, Copy)]
struct Sizes {
    fanout: usize,
    flows: usize,
    repeats: usize,
}

const FULL: Sizes = Sizes {
    fanout: 1_000,
    flows: 1_000,
    repeats: 5,
};

const SMOKE: Sizes = Sizes {
    fanout: 20,
    flows: 30,
    repeats: 1,
};

const SECTION: &str = "explorer";

/// True while a gap row (children not loaded yet) is on screen.
const GAP_ON_SCREEN: &str = "(() => { const t = document.getElementById('tree'); \
    return [...t.querySelectorAll('.row.more')].some(r => r.offsetTop + 26 > t.scrollTop && r.offsetTop < t.scrollTop + t.clientHeight); })()";

fn main() {
    bench_main(SECTION, |smoke| {
        run(if smoke { SMOKE } else { FULL }, smoke)
    });
}

/// Every `FAILED_EVERY`-th leaf failed.
const FAILED_EVERY: usize = 100;

/// Flows flow-0…flow-N (one run each), then the run R of flow `million`:
/// R.i (i < fanout) and R.i.j (j < fanout), created in that order.
async fn seed(store: &ExecutionStore, s: Sizes) {
    let input = |id: String, flow: &str, parent: Option<String>, status| CreateExecution {
        id: Some(id),
        flow_id: flow.into(),
        owner_id: "bench".into(),
        parent_execution_id: parent,
        status: Some(status),
        ..Default::default()
    };
    let flows: Vec<_> = (0..s.flows)
        .map(|k| {
            input(
                format!("run-{k}"),
                &format!("flow-{k:04}"),
                None,
                ExecutionStatus::Completed,
            )
        })
        .collect();
    store
        .runs()
        .create_many(flows, &Scope::All)
        .await
        .expect("flows");
    let mut level: Vec<_> = vec![input("R".into(), "million", None, ExecutionStatus::Running)];
    level.extend((0..s.fanout).map(|i| {
        input(
            format!("R.{i}"),
            "million",
            Some("R".into()),
            ExecutionStatus::Completed,
        )
    }));
    store
        .runs()
        .create_many(level, &Scope::All)
        .await
        .expect("level 1");
    let mut batch = Vec::with_capacity(store::limits::MAX_BATCH);
    let mut n = 0;
    for i in 0..s.fanout {
        for j in 0..s.fanout {
            let status = if n % FAILED_EVERY == 37 {
                ExecutionStatus::Failed
            } else {
                ExecutionStatus::Completed
            };
            batch.push(input(
                format!("R.{i}.{j}"),
                "million",
                Some(format!("R.{i}")),
                status,
            ));
            n += 1;
            if batch.len() == store::limits::MAX_BATCH {
                store
                    .runs()
                    .create_many(std::mem::take(&mut batch), &Scope::All)
                    .await
                    .expect("leaves");
            }
        }
    }
    if !batch.is_empty() {
        store
            .runs()
            .create_many(batch, &Scope::All)
            .await
            .expect("leaves");
    }
}

struct Figures {
    counts_ms: f64,
    flows_ms: f64,
    open_ms: f64,
    failed_ms: f64,
    failed_server_ms: f64,
    reveal_ms: f64,
    scroll_ms: f64,
    scroll_windows: usize,
    most_rows: usize,
}

async fn number(page: &chromiumoxide::Page, expression: &str) -> f64 {
    wait_until(page, expression, Duration::from_secs(60)).await;
    eval(page, expression).await
}

/// The explorer's figures against the server at `base` (medians of
/// `s.repeats` fresh page loads each).
async fn measure(
    chromium: &Chromium,
    base: &str,
    graphql: &str,
    s: Sizes,
    backend: &str,
) -> Figures {
    let (mut flows, mut open, mut counts, mut failed, mut reveal) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.repeats {
        step(&format!("{backend}: the flows page"));
        let page = chromium.open(&format!("{base}/explorer")).await;
        flows.push(number(&page, "window.explorer.flowsDrawnAt").await);
        let _ = page.as_ref().clone().close().await;

        step(&format!("{backend}: open the run, Failed, reveal"));
        let page = chromium.open(&format!("{base}/explorer?run=R")).await;
        open.push(number(&page, "window.explorer.treeDrawnAt").await);
        counts.push(number(&page, "window.explorer.countsShownAt").await);
        wait_until(
            &page,
            "document.querySelector('.status-box[data-status=FAILED]')",
            Duration::from_secs(120),
        )
        .await;
        let _: Value = eval(
            &page,
            "(document.querySelector('.status-box[data-status=FAILED]').click(), true)",
        )
        .await;
        failed.push(
            number(
                &page,
                "document.querySelectorAll('#found-rows li').length && window.explorer.foundInMs",
            )
            .await,
        );
        // A failure from the middle of the page, two levels down.
        let _: Value = eval(
            &page,
            "(() => { const found = document.querySelectorAll('#found-rows li'); found[Math.min(25, found.length - 1)].click(); return true; })()",
        )
        .await;
        reveal.push(number(&page, "window.explorer.revealedInMs").await);
        let _ = page.as_ref().clone().close().await;
    }

    step(&format!(
        "{backend}: the server's time for the first page of Failed"
    ));
    let client = reqwest::Client::new();
    let query = json!({ "query": "{ childFeed(rootExecutionId: \"R\", status: [FAILED], first: 50) { nodes { id status errorMessage executionDepth } pageInfo { hasNextPage endCursor } } }" });
    let mut server = Vec::new();
    for _ in 0..(10 * s.repeats) {
        let t = Instant::now();
        let body: Value = client
            .post(graphql)
            .json(&query)
            .send()
            .await
            .expect("feed")
            .json()
            .await
            .expect("json");
        server.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(body["errors"].is_null(), "{body}");
    }

    step(&format!(
        "{backend}: scrolling one parent's children end to end"
    ));
    let middle = s.fanout / 2;
    let page = chromium
        .open(&format!("{base}/explorer?execution=R.{middle}"))
        .await;
    let parent = format!("document.querySelector('#tree .row[data-id=\"R.{middle}\"]')");
    wait_until(
        &page,
        &format!("{parent} && {parent}.classList.contains('selected')"),
        Duration::from_secs(60),
    )
    .await;
    let started = Instant::now();
    let _: Value = eval(
        &page,
        &format!("({parent}.querySelector('.toggle').click(), true)"),
    )
    .await;
    let last = format!(
        "document.querySelector('#tree .row[data-id=\"R.{middle}.{}\"]')",
        s.fanout - 1
    );
    let laid_out = "parseFloat(document.getElementById('tree-spacer').style.height) / 26";
    let (mut most_rows, mut windows) = (0, 0);
    loop {
        let rows: f64 = eval(&page, laid_out).await;
        let in_dom: usize = eval(&page, "document.querySelectorAll('#tree .row').length").await;
        most_rows = most_rows.max(in_dom);
        if eval::<bool>(&page, &format!("Boolean({last})")).await {
            break;
        }
        windows += 1;
        assert!(windows <= 4 * s.fanout, "the end never came");
        // Half a screen down; then, once drawn, wait while a gap on screen
        // is loading (the page loads the gaps it shows).
        let drawn: f64 = eval(&page, "window.explorer.drawn").await;
        let _: Value = eval(&page, "(document.getElementById('tree').scrollTop += document.getElementById('tree').clientHeight / 2, true)").await;
        wait_until(
            &page,
            &format!("window.explorer.drawn > {drawn}"),
            Duration::from_secs(30),
        )
        .await;
        wait_until(
            &page,
            &format!("{laid_out} > {rows} || {last} || !{GAP_ON_SCREEN}"),
            Duration::from_secs(30),
        )
        .await;
    }
    let scroll_ms = started.elapsed().as_secs_f64() * 1000.0;
    let errors: Vec<String> = eval(&page, "window.explorer.errors").await;
    assert!(errors.is_empty(), "{errors:?}");
    let _ = page.as_ref().clone().close().await;
    Figures {
        counts_ms: median(counts),
        flows_ms: median(flows),
        open_ms: median(open),
        failed_ms: median(failed),
        failed_server_ms: median(server),
        reveal_ms: median(reveal),
        scroll_ms,
        scroll_windows: windows,
        most_rows,
    }
}

async fn run(s: Sizes, smoke: bool) -> String {
    let binary = build_release_server();
    let chromium = Chromium::launch().await;
    let mut figures = Vec::new();

    let (cluster, url, db) = bench_database(&[]).await;
    step("PostgreSQL: seeding the run");
    seed(&ExecutionStore::new(db.clone()), s).await;
    exec(&db, "VACUUM ANALYZE").await;
    let (server, graphql) = start_execstore(&binary, &url).await;
    let base = graphql.trim_end_matches("/graphql").to_owned();
    figures.push(measure(&chromium, &base, &graphql, s, "PostgreSQL").await);
    drop(server);
    let _ = cluster.stop();

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    {
        step("SQLite: seeding the run");
        let sdb = store::connect(&sqlite_url, &DbOptions::default())
            .await
            .expect("sqlite");
        seed(&ExecutionStore::new(sdb.clone()), s).await;
        exec(&sdb, "ANALYZE").await;
        sdb.close().await.ok();
    }
    let (server, graphql) = start_execstore(&binary, &sqlite_url).await;
    let base = graphql.trim_end_matches("/graphql").to_owned();
    figures.push(measure(&chromium, &base, &graphql, s, "SQLite").await);
    drop(server);
    chromium.close_with_nothing_sent_outside().await;
    report(s, &figures, smoke)
}

fn report(s: Sizes, figures: &[Figures], smoke: bool) -> String {
    let total = 1 + s.fanout + s.fanout * s.fanout;
    let mut out = String::new();
    out.push_str("## The explorer on a run of a million (`cargo bench --bench explorer`)\n\n");
    out.push_str(&format!(
        "One run: headless Chromium (1400×900) against the release server over loopback, each backend in turn. \
         The run: a root with {f} children of {f} children each ({total} executions, 1 % of the leaves failed), \
         beside {flows} other flows. Page timings are medians of {r} fresh page loads; the server's time for \
         the first page of Failed is the median of {q} requests from a plain HTTP client.\n\n",
        f = s.fanout, flows = s.flows, r = s.repeats, q = 10 * s.repeats
    ));
    out.push_str("| what | target | PostgreSQL | SQLite |\n|---|---:|---:|---:|\n");
    let row = |what: &str, target: &str, get: &dyn Fn(&Figures) -> f64| {
        format!(
            "| {what} | {target} | {:.0} ms | {:.0} ms |\n",
            get(&figures[0]),
            get(&figures[1])
        )
    };
    out.push_str(&row(
        "flows page: navigation to rows drawn",
        "≤ 300 ms",
        &|f| f.flows_ms,
    ));
    out.push_str(&row(
        "open the run: navigation to first rows drawn",
        "≤ 1,000 ms",
        &|f| f.open_ms,
    ));
    out.push_str(&row(
        "status counts shown (`executionStats` reads the whole run): navigation to boxes",
        "—",
        &|f| f.counts_ms,
    ));
    out.push_str(&row(
        "Failed: click to its first page listed",
        "≤ 300 ms",
        &|f| f.failed_ms,
    ));
    out.push_str(&row(
        "Failed: the server's time for that page",
        "≤ 50 ms",
        &|f| f.failed_server_ms,
    ));
    out.push_str(&row(
        "reveal a failure two levels down in the tree",
        "≤ 500 ms",
        &|f| f.reveal_ms,
    ));
    out.push_str(&format!(
        "| scroll one parent's {} children end to end: scroll steps, most rows in the DOM | ≤ 200 rows | {} steps, {} rows ({:.1} s) | {} steps, {} rows ({:.1} s) |\n\n",
        s.fanout,
        figures[0].scroll_windows, figures[0].most_rows, figures[0].scroll_ms / 1000.0,
        figures[1].scroll_windows, figures[1].most_rows, figures[1].scroll_ms / 1000.0,
    ));
    if smoke {
        out.push_str("(smoke run: tiny sizes, not a measurement)\n");
    }
    out
}
