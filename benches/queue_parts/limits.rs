//! The queue bench's concurrency-limit section (issue #30), on one backend's
//! server: limited runs drained by batched rounds against the same backlog
//! without limits, and pulls of free work beside runs at their limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::{claimed_ids, finish_all, post_ok, CREATE_BATCH, CREATE_MANY, PULL};

/// What the section measured on one backend.
pub struct Limits {
    pub backend: &'static str,
    /// Executions completed/s by batched rounds: limited runs, unlimited.
    pub limited: f64,
    pub unlimited: f64,
    pub each_once: bool,
    /// Per-call p50 (ms) of a pull of free work, beside runs at their limit
    /// holding queued executions in the same flow, and without them.
    pub beside_blocked: f64,
    pub alone: f64,
    /// The blocked executions handed out during those pulls (must be 0).
    pub blocked_handed_out: usize,
}

/// Sizes: `runs` runs of `per_run` children for the drains; `blocked_runs`
/// of `blocked_per_run` for the pulls; `calls` pulls timed per side.
pub struct LimitSizes {
    pub runs: usize,
    pub per_run: usize,
    pub blocked_runs: usize,
    pub blocked_per_run: usize,
    pub calls: usize,
    pub rounds: usize,
}

/// Creates `runs` runs in `flow` (ids `{flow}-{r}`, children `{flow}-{r}.{i}`),
/// roots with `options` (roots in `{flow}-roots` when `roots_apart`).
async fn make_runs(
    url: &str,
    flow: &str,
    runs: usize,
    per_run: usize,
    options: Value,
    roots_apart: bool,
) {
    let client = reqwest::Client::new();
    let root_flow = if roots_apart {
        format!("{flow}-roots")
    } else {
        flow.to_owned()
    };
    let mut inputs: Vec<Value> = Vec::new();
    let flush = async |inputs: &mut Vec<Value>| {
        if !inputs.is_empty() {
            let batch = std::mem::take(inputs);
            post_ok(
                &client,
                url,
                json!({ "query": CREATE_MANY, "variables": { "inputs": batch } }),
            )
            .await;
        }
    };
    for r in 0..runs {
        let root = format!("{flow}-{r}");
        inputs.push(
            json!({ "id": root, "flowId": root_flow, "ownerId": "bench", "options": options }),
        );
        for i in 0..per_run {
            inputs.push(json!({ "id": format!("{root}.{i}"), "flowId": flow, "ownerId": "bench", "parentExecutionId": root }));
        }
        // A run whole in one batch (its children after their root).
        if inputs.len() + per_run + 1 > CREATE_BATCH {
            flush(&mut inputs).await;
        }
    }
    flush(&mut inputs).await;
}

/// 8 workers drain `flow` by batched rounds (pull 50 with `waitMs`, finish
/// them in one `finishExecutions`) until `expected` are completed (bounded
/// by a deadline): executions completed/s, and each completed once?
async fn rounds_until_done(url: &str, flow: &str, expected: usize) -> (f64, bool) {
    let done: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (url, flow, done) = (url.to_owned(), flow.to_owned(), done.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let worker = format!("lw{w}");
                while done.lock().unwrap().len() < expected && Instant::now() < deadline {
                    let body = json!({ "query": PULL, "variables": { "w": worker, "f": flow, "n": 50, "wait": 200 } });
                    let got: Value = client.post(&url).json(&body).send().await.expect("pull").json().await.expect("json");
                    let ids = claimed_ids(&got);
                    if ids.is_empty() {
                        continue;
                    }
                    let finished = finish_all(&client, &url, &worker, &ids).await;
                    done.lock().unwrap().extend(finished);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("limited worker");
    }
    let rate = expected as f64 / started.elapsed().as_secs_f64();
    let done = done.lock().unwrap();
    let unique: std::collections::HashSet<&String> = done.iter().collect();
    (rate, done.len() == expected && unique.len() == expected)
}

pub async fn concurrency_limits(
    url: &str,
    backend: &'static str,
    tag: &str,
    s: &LimitSizes,
) -> Limits {
    let limit2 = json!({ "execution": { "maxConcurrency": 2 } });
    let (mut limited, mut unlimited, mut each_once) = (Vec::new(), Vec::new(), true);
    for round in 0..s.rounds {
        step(&format!("{backend}: {} runs of maxConcurrency 2 against the same backlog unlimited, batched rounds (round {round})", s.runs));
        let expected = s.runs * (s.per_run + 1);
        let flow = format!("{tag}-lim-r{round}");
        make_runs(url, &flow, s.runs, s.per_run, limit2.clone(), false).await;
        let (rate, once) = rounds_until_done(url, &flow, expected).await;
        limited.push(rate);
        each_once &= once;
        let flow = format!("{tag}-unl-r{round}");
        make_runs(url, &flow, s.runs, s.per_run, Value::Null, false).await;
        let (rate, once) = rounds_until_done(url, &flow, expected).await;
        unlimited.push(rate);
        each_once &= once;
    }

    step(&format!(
        "{backend}: pulls of free work beside {} runs at their limit holding {} queued executions",
        s.blocked_runs,
        s.blocked_runs * (s.blocked_per_run - 2)
    ));
    let client = reqwest::Client::new();
    let blocked = format!("{tag}-blocked");
    make_runs(
        url,
        &blocked,
        s.blocked_runs,
        s.blocked_per_run,
        limit2,
        true,
    )
    .await;
    // A holder takes what the limits admit (2 per run): every run is at
    // its limit, the rest of each waits.
    let mut held = 0;
    for _ in 0..1_000_000 {
        let body = json!({ "query": PULL, "variables": { "w": "holder", "f": blocked, "n": 100 } });
        let n = claimed_ids(&post_ok(&client, url, body).await).len();
        if n == 0 {
            break;
        }
        held += n;
    }
    assert_eq!(held, 2 * s.blocked_runs, "the limits admit 2 per run");
    // Free work in the same flow, created after the blocked (behind them in
    // hand-out order), and as much in a flow of its own.
    let alone = format!("{tag}-alone");
    for (flow, prefix) in [(&blocked, "free"), (&alone, "alone")] {
        let ids: Vec<usize> = (0..s.calls + 10).collect();
        for chunk in ids.chunks(CREATE_BATCH) {
            let inputs: Vec<Value> = chunk
                .iter()
                .map(|i| json!({ "id": format!("{tag}-{prefix}-{i}"), "flowId": flow, "ownerId": "bench" }))
                .collect();
            post_ok(
                &client,
                url,
                json!({ "query": CREATE_MANY, "variables": { "inputs": inputs } }),
            )
            .await;
        }
    }
    let pull_one = |flow: &str| -> MakeBody {
        let flow = flow.to_owned();
        Arc::new(move |_| json!({ "query": PULL, "variables": { "w": "solo", "f": flow, "n": 1 } }))
    };
    let handed: Arc<Mutex<usize>> = Arc::default();
    let seen = handed.clone();
    let accept: Accept = Arc::new(move |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        if text.contains("-blocked-") {
            *seen.lock().unwrap() += 1;
        }
        text.contains("\"id\":")
    });
    let (mut beside, mut without) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (flow, out) in [(&alone, &mut without), (&blocked, &mut beside)] {
            let run = drive(url, 1, 60.0, s.calls / 2, pull_one(flow), accept.clone()).await;
            out.push(run.p50_ms);
        }
    }
    let blocked_handed_out = *handed.lock().unwrap();
    Limits {
        backend,
        limited: median(limited),
        unlimited: median(unlimited),
        each_once,
        beside_blocked: median(beside),
        alone: median(without),
        blocked_handed_out,
    }
}

impl Limits {
    pub fn report(all: &[Limits], s: &LimitSizes) -> String {
        let mut out = format!(
            "Concurrency limits (issue #30). Drains: {} runs of {} children (roots in the same flow), 8 workers in batched rounds \
             (pull 50 with `waitMs`, finish them in one `finishExecutions`), the runs' roots setting `maxConcurrency: 2` against the \
             same backlog without it (target ≥ 0.8×). Pulls: {} runs at their limit (2 held each) holding {} queued executions in \
             one flow; 1 worker pulling 1 of the free work queued behind them in that flow, against the same in a flow of its own \
             (target p50 ≤ 1.1×). Medians of {} rounds (drains) and of two alternations (pulls).\n\n\
             | backend | limited: completed/s | unlimited | limited / unlimited | each once | pull p50 beside the blocked | alone | ratio | blocked handed out |\n\
             |---|---:|---:|---:|---|---:|---:|---:|---:|\n",
            s.runs,
            s.per_run,
            s.blocked_runs,
            s.blocked_runs * (s.blocked_per_run - 2),
            s.rounds,
        );
        for l in all {
            out.push_str(&format!(
                "| {} | {:.0} | {:.0} | **{:.2}×** | {} | {:.2} ms | {:.2} ms | **{:.2}×** | {} |\n",
                l.backend,
                l.limited,
                l.unlimited,
                l.limited / l.unlimited,
                if l.each_once { "yes" } else { "**no**" },
                l.beside_blocked,
                l.alone,
                l.beside_blocked / l.alone,
                l.blocked_handed_out,
            ));
        }
        out.push('\n');
        out
    }
}
