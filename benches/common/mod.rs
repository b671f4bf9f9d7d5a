//! What the benchmarks share: processes they start, a bounded HTTP load
//! generator, medians, and pgbench. Every load loop stops by itself (a
//! deadline and a request cap) and talks only to 127.0.0.1.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value;
use testkit::throwaway_pg::Cluster;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A throwaway PostgreSQL 15 cluster tuned for benchmarks (plus `extra`
/// settings), with a migrated database `bench`: the cluster, the database's
/// URL and a connection to it whose statements may run for an hour (loading
/// millions of rows outlasts the server's default statement timeout).
pub async fn bench_database(extra: &[(&str, &str)]) -> (Cluster, String, DatabaseConnection) {
    step("starting a throwaway PostgreSQL 15 cluster");
    let mut settings = vec![
        ("shared_buffers", "512MB"),
        ("synchronous_commit", "off"),
        ("max_connections", "300"),
    ];
    settings.extend_from_slice(extra);
    let cluster = Cluster::start(&settings).expect("throwaway cluster");
    let admin = sea_orm::Database::connect(cluster.url("postgres"))
        .await
        .expect("admin");
    exec(&admin, "CREATE DATABASE bench").await;
    admin.close().await.ok();
    let url = cluster.url("bench");
    let db = execstore::store::connect(
        &url,
        &execstore::store::DbOptions {
            statement_timeout: Duration::from_secs(3600),
            ..execstore::store::DbOptions::default()
        },
    )
    .await
    .expect("migrate bench db");
    (cluster, url, db)
}

pub fn step(what: &str) {
    eprintln!("[bench] {what}");
}

// ---------------------------------------------------------------- processes

pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        step(&format!("stopped {}", self.name));
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The release server: built from this tree, or the binary named by
/// `EXECSTORE_BENCH_SERVER` (to measure another build, such as the one
/// before a change, with the same harness).
pub fn build_release_server() -> PathBuf {
    if let Some(binary) = std::env::var_os("EXECSTORE_BENCH_SERVER") {
        step(&format!("using the server {}", binary.to_string_lossy()));
        return PathBuf::from(binary);
    }
    step("building the release server");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Without the variables cargo set for this bench (CARGO_MANIFEST_DIR,
    // CARGO_PKG_*, …): some build scripts (ring's) rerun when one changes,
    // so the release build and the next `cargo bench` would each rebuild
    // the TLS and SQL stack for the other (minutes per bench run).
    let mut build = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let per_bench = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ];
        if per_bench.iter().any(|p| name.starts_with(p)) || name == "CARGO_PRIMARY_PACKAGE" {
            build.env_remove(name);
        }
    }
    let status = build
        .args(["build", "--release", "--bin", "execstore"])
        .current_dir(ROOT)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --release failed");
    Path::new(ROOT).join("target/release/execstore")
}

pub async fn wait_http(url: &str, limit: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().as_u16() < 500 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not come up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn start_execstore(binary: &Path, database_url: &str) -> (Proc, String) {
    start_execstore_with(binary, database_url, &[]).await
}

/// The release server on a free loopback port, with extra environment.
pub async fn start_execstore_with(
    binary: &Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(binary)
        .envs(env.iter().copied())
        .env("DATABASE_URL", database_url)
        .env("EXECSTORE_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start execstore");
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/healthz"), Duration::from_secs(60)).await;
    (
        Proc {
            child,
            name: "execstore",
        },
        format!("{base}/graphql"),
    )
}

/// A `/proc/PID/status` figure (`VmHWM:`, `VmRSS:`) in MB.
pub fn status_mb(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Peak resident memory so far (VmHWM).
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// Resident memory now (VmRSS).
pub fn current_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

pub async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"));
}

/// The body of request number n.
pub type MakeBody = Arc<dyn Fn(usize) -> Value + Send + Sync>;
/// Whether a response body counts as a success.
pub type Accept = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

#[derive(Clone, Debug, Default)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: usize,
    pub errors: usize,
}

/// `conns` clients send `body` (a fresh one per request from `make`) back to
/// back until the deadline or the cap; latency per request.
pub async fn drive(
    url: &str,
    conns: usize,
    seconds: f64,
    cap: usize,
    make: MakeBody,
    accept: Accept,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, make, accept, counter) = (
                client.clone(),
                url.to_owned(),
                make.clone(),
                accept.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    if n >= cap {
                        break;
                    }
                    let body = make(n);
                    let t = Instant::now();
                    let ok = match client.post(&url).json(&body).send().await {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.map(|b| accept(&b)).unwrap_or(false)
                        }
                        _ => false,
                    };
                    latencies.push(t.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("load task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    Run {
        rps: (latencies.len() - errors) as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        requests: latencies.len(),
        errors,
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if xs.is_empty() {
        f64::NAN
    } else {
        xs[xs.len() / 2]
    }
}

pub fn median_run(runs: &[Run]) -> Run {
    Run {
        rps: median(runs.iter().map(|r| r.rps).collect()),
        p50_ms: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|r| r.p99_ms).collect()),
        requests: runs.iter().map(|r| r.requests).sum(),
        errors: runs.iter().map(|r| r.errors).sum(),
    }
}

pub async fn post(url: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON")
}

pub fn pgbench(cluster: &Cluster, clients: usize, args: &[&str], script: &str) -> (f64, f64) {
    let path = std::env::temp_dir().join(format!("execstore-bench-{}.sql", std::process::id()));
    std::fs::write(&path, script).expect("pgbench script");
    let started = Instant::now();
    let output = Command::new(Cluster::bin_dir().join("pgbench"))
        .args([
            "-n",
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(args)
        .arg("-f")
        .arg(&path)
        .arg("bench")
        .output()
        .expect("run pgbench");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);
    (tps, wall)
}

/// The median latency in ms of one pgbench client running `script` back to
/// back for `seconds` (from pgbench's per-transaction log).
pub fn pgbench_p50(cluster: &Cluster, script: &str, seconds: f64) -> f64 {
    let dir = std::env::temp_dir();
    let name = format!("execstore-pgbench-log-{}", std::process::id());
    let prefix = dir.join(&name);
    let seconds = (seconds.ceil() as u64).max(1).to_string();
    pgbench(
        cluster,
        1,
        &["-T", &seconds, "-l", "--log-prefix", path_text(&prefix)],
        script,
    );
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("temp dir").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with(&format!("{name}.")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // client transaction_no time_us script_no epoch epoch_us
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter_map(|t| t.parse::<f64>().ok())
                .map(|us| us / 1000.0),
        );
        let _ = std::fs::remove_file(entry.path());
    }
    median(latencies)
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

pub const TAKE_OVER: &str = "ON CONFLICT (execution_id) DO UPDATE SET worker_id = excluded.worker_id, \
    claimed_at = excluded.claimed_at, expires_at = excluded.expires_at, heartbeat_at = excluded.heartbeat_at, status = 'active' \
    WHERE execution_claims.status <> 'active' OR execution_claims.expires_at < excluded.claimed_at OR execution_claims.worker_id = excluded.worker_id";

/// What `claimExecution` does on PostgreSQL, as pgbench runs it: lock the
/// execution, upsert the claim, set the processing worker and the lease.
/// Leases here and in `claim_by_id` last an hour: the claims' cost does not
/// depend on it, and a 30 s lease lapsed during the later sections of the
/// same bench, whose short pulls then put the leftovers back (90,000 of
/// them at the end of each drain of the queue bench's batched round).
pub fn floor_claim_script() -> String {
    format!(
        "WITH target AS (SELECT 'cf-' || nextval('bench_cf_seq') AS id), \
         claimed AS (INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
           SELECT e.id, 'pgbench', now(), now() + interval '1 hour', now(), 'active' FROM executions e JOIN target t ON e.id = t.id \
           WHERE e.status NOT IN ('completed', 'failed', 'stopped') FOR UPDATE OF e {TAKE_OVER} RETURNING *), \
         touched AS (UPDATE executions SET processing_started_at = now(), processing_worker_id = 'pgbench', updated_at = now(), \
           lease_expires_at = now() + interval '1 hour' FROM claimed WHERE executions.id = claimed.execution_id RETURNING executions.*) \
         SELECT t.*, c.worker_id, c.expires_at FROM touched t JOIN claimed c ON c.execution_id = t.id;\n"
    )
}

/// `claimExecution` by id at `conns` connections over HTTP, `rounds` runs,
/// each on its own slice of the `cb-N` pool (`per_run` executions), and
/// pgbench running the same single statement on the `cf-N` pool: the median
/// run and the median floor (tx/s).
pub async fn claim_by_id(
    es_url: &str,
    cluster: &Cluster,
    conns: usize,
    rounds: usize,
    seconds: f64,
    per_run: usize,
    next_id: &Arc<AtomicUsize>,
) -> (Run, f64) {
    let (mut es, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let ids = next_id.clone();
        let make: MakeBody = Arc::new(move |_| {
            let n = ids.fetch_add(1, Ordering::SeqCst);
            serde_json::json!({
                "query": "mutation($id: ID!) { claimExecution(executionId: $id, workerId: \"bench\", timeoutMs: 3600000) { acquired } }",
                "variables": { "id": format!("cb-{n}") }
            })
        });
        let accept: Accept = Arc::new(|b: &[u8]| b.windows(15).any(|w| w == b"\"acquired\":true"));
        es.push(drive(es_url, conns, seconds, per_run, make, accept).await);
        let per_client = (per_run / conns).max(1).to_string();
        floor.push(pgbench(cluster, conns, &["-t", &per_client], &floor_claim_script()).0);
    }
    (median_run(&es), median(floor))
}

/// `claim_by_id` at 1, 8 and 32 clients, each of the 3 × rounds runs on
/// its own slice of the pool (on both sides, so no claim ever lands on a
/// missing row): (clients, execstore, floor tx/s).
pub async fn claim_by_id_at_each_size(
    es_url: &str,
    cluster: &Cluster,
    claim_pool: usize,
    rounds: usize,
    seconds: f64,
) -> Vec<(usize, Run, f64)> {
    let next = Arc::new(AtomicUsize::new(1));
    let per_run = claim_pool / (3 * rounds);
    let mut out = Vec::new();
    for conns in [1, 8, 32] {
        step(&format!("claimExecution @{conns}"));
        let (run, floor) =
            claim_by_id(es_url, cluster, conns, rounds, seconds, per_run, &next).await;
        out.push((conns, run, floor));
    }
    out
}

/// Replaces (or appends) this bench's section of BENCHMARKS.md.
pub fn write_section(name: &str, text: &str) {
    let path = Path::new(ROOT).join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = format!("{start}\n{text}\n*reproduce*: `cargo bench --bench {name}`\n{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], &old[b + end.len()..]),
        _ => format!("{}\n{block}\n", old.trim_end()),
    };
    std::fs::write(&path, new).expect("write BENCHMARKS.md");
    println!("wrote its section of {}", path.display());
}

/// A bench binary's `main`: `--smoke` runs tiny sizes and only prints (and
/// says so in a line test runners read); a full run also rewrites the
/// bench's section of BENCHMARKS.md. The runtime has two workers, like the
/// machine.
pub fn bench_main<F>(section: &str, run: impl FnOnce(bool) -> F)
where
    F: std::future::Future<Output = String>,
{
    let smoke = std::env::args().any(|a| a == "--smoke");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(run(smoke));
    println!("{report}");
    if smoke {
        println!("smoke run finished: 1 passed, 0 failed");
    } else {
        write_section(section, &report);
    }
}
