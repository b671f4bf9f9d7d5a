//! The real binary as an operator runs it: SIGKILL mid-write and restart
//! (nothing acknowledged is lost), SIGTERM drains, PostgreSQL going away and
//! coming back under a running server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use execstore::store::Scope;
use serde_json::{json, Value};

use crate::harness::{fresh, Backend};

struct Server {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_execstore"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("EXECSTORE_BIND", &addr)
            .env("RUST_LOG", "info,tower_http=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start execstore");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let server = Server { child, addr, lines };
        server.wait_for_log("listening on", Duration::from_secs(60));
        server
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => {
                    if std::env::var_os("SHOW_SERVER_LOG").is_some() {
                        eprintln!("server: {line}");
                    }
                }
                Err(_) => panic!("no log line with {needle:?} within {limit:?}"),
            }
        }
    }

    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn gql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
) -> Result<Value, reqwest::Error> {
    client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await
}

/// Writers create executions as fast as they can; the server is SIGKILLed
/// mid-stream, restarted on the same database, and every write it had
/// acknowledged is there.
async fn sigkill_loses_no_acknowledged_write(backend: Backend) {
    let t = fresh(backend).await;
    let mut server = Server::start(&t.url, &[]);
    let url = server.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
            tokio::spawn(async move {
                let mut parent: Option<String> = None;
                for n in 0..5000 {
                    let id = format!("w{w}-{n}");
                    let input = json!({ "id": id, "flowId": "crash", "ownerId": "o", "parentExecutionId": parent, "options": { "n": n } });
                    let q = "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
                    match gql(&client, &url, q, json!({ "input": input })).await {
                        Ok(body) if body["data"]["createExecution"]["id"] == id.as_str() => {
                            acked.lock().unwrap().push(id.clone());
                            parent = if n % 3 == 0 { None } else { Some(id) };
                        }
                        _ => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    // Kill once a good number of writes are acknowledged and more are in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 600 {
        assert!(Instant::now() < deadline, "writers made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("-KILL");
    server.wait_exit(Duration::from_secs(10));
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let restarted = Server::start(&t.url, &[]);
    let mut lost = Vec::new();
    for chunk in acked.chunks(500) {
        let found = t
            .store()
            .reads()
            .get_many(chunk, &Scope::All)
            .await
            .unwrap();
        let found: std::collections::HashSet<_> = found.into_iter().map(|e| e.id).collect();
        lost.extend(chunk.iter().filter(|id| !found.contains(*id)).cloned());
    }
    let body = gql(
        &client,
        &restarted.url(),
        "{ rootExecutions(flowId: \"crash\", first: 1) { nodes { execution { id } } } }",
        json!({}),
    )
    .await
    .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    println!(
        "crash {backend:?}: {} acknowledged writes checked after SIGKILL, {} lost",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:?}");
}

/// A request in flight when SIGTERM arrives is answered; then the server exits 0.
async fn sigterm_drains_in_flight_requests(backend: Backend) {
    let t = fresh(backend).await;
    let mut server = Server::start(&t.url, &[]);
    let body = json!({ "query": "mutation { createExecution(input: { id: \"late\", flowId: \"f\", ownerId: \"o\" }) { id } }" }).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        server.addr,
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    // The server has the request (its trace span started) but not all of the body.
    server.wait_for_log("started processing request", Duration::from_secs(10));
    server.signal("-TERM");
    server.wait_for_log("shutdown signal received", Duration::from_secs(30));
    stream.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"late\""), "{response}");
    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(t
        .store()
        .reads()
        .get("late", &Scope::All)
        .await
        .unwrap()
        .is_some());
}

/// PostgreSQL stops under a running server: /readyz says 503, queries fail
/// cleanly (coded, no hang); PostgreSQL comes back: the same process serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_and_recovery() {
    let cluster = testkit::throwaway_pg::Cluster::start(&[("fsync", "off")])
        .expect("a private cluster for the outage test");
    let admin = sea_orm::Database::connect(cluster.url("postgres"))
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&admin, "CREATE DATABASE outage")
        .await
        .unwrap();
    admin.close().await.unwrap();
    let server = Server::start(
        &cluster.url("outage"),
        &[
            ("EXECSTORE_REQUEST_TIMEOUT_MS", "8000"),
            ("EXECSTORE_MAX_WAIT", "5s"),
        ],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let create = "mutation($id: ID!) { createExecution(input: { id: $id, flowId: \"f\", ownerId: \"o\" }) { id } }";
    let body = gql(&client, &server.url(), create, json!({ "id": "before" }))
        .await
        .unwrap();
    assert_eq!(body["data"]["createExecution"]["id"], "before");
    let ready = |client: reqwest::Client, addr: String| async move {
        client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(client.clone(), server.addr.clone()).await, 200);

    cluster.stop().unwrap();
    assert_eq!(ready(client.clone(), server.addr.clone()).await, 503);
    for _ in 0..3 {
        let started = Instant::now();
        let response = client
            .post(server.url())
            .json(&json!({ "query": "{ execution(id: \"before\") { id } }" }))
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(
            elapsed < Duration::from_secs(9),
            "answered within the request timeout ({elapsed:?})"
        );
        if status == 200 {
            let body: Value = serde_json::from_str(&text).unwrap();
            let code = body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_default();
            assert!(code == "UNAVAILABLE" || code == "INTERNAL", "{body}");
        } else {
            assert_eq!(status, 408, "only a clean timeout otherwise: {text}");
        }
        assert!(!text.contains("SELECT") && !text.contains("sqlx"), "{text}");
    }

    cluster.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(client.clone(), server.addr.clone()).await != 200 {
        assert!(
            Instant::now() < deadline,
            "server did not become ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = gql(&client, &server.url(), create, json!({ "id": "after" }))
        .await
        .unwrap();
    assert_eq!(body["data"]["createExecution"]["id"], "after", "{body}");
    let body = gql(
        &client,
        &server.url(),
        "{ execution(id: \"before\") { id } }",
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(body["data"]["execution"]["id"], "before");
    cluster.stop().unwrap();
}

crate::both_backends!(
    sigkill_loses_no_acknowledged_write,
    sigterm_drains_in_flight_requests
);

/// The throwaway-cluster harness lives in the dev-only `testkit` crate: the
/// binary operators run must not carry it (its marker strings would show).
#[test]
fn server_binary_holds_no_test_harness() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_execstore")).expect("read the server binary");
    for marker in [&b"execstore-pg-"[..], b"throwaway-postgres"] {
        assert!(
            !binary.windows(marker.len()).any(|w| w == marker),
            "the server binary contains {:?}",
            String::from_utf8_lossy(marker)
        );
    }
}

/// `EXECSTORE_LOG_FORMAT=json`: one JSON object per line, each request's
/// line carrying the request id that also comes back in `x-request-id` (the
/// client's own id kept when it sends one). `EXECSTORE_METRICS_BIND` moves
/// `/metrics` off the API's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_metrics_listen_apart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("logs.db").display());
    let metrics_addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let server = Server::start(
        &url,
        &[
            ("EXECSTORE_LOG_FORMAT", "json"),
            ("EXECSTORE_METRICS_BIND", &metrics_addr),
            ("RUST_LOG", "info"),
        ],
    );
    let client = reqwest::Client::new();
    let body = json!({ "query": "{ execution(id: \"x\") { id } }" });

    let response = client.post(server.url()).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let response = client
        .post(server.url())
        .header("x-request-id", "client-chosen-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-42");

    for id in [generated.as_str(), "client-chosen-42"] {
        let line = server.wait_for_log(id, Duration::from_secs(10));
        let entry: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert_eq!(entry["span"]["request_id"], id, "{line}");
        assert_eq!(entry["span"]["uri"], "/graphql", "{line}");
        assert_eq!(entry["status"], 200, "{line}");
        assert!(entry["level"].is_string() && entry["timestamp"].is_string());
    }

    let on_api = client
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404, "metrics moved off the API address");
    let scraped = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(scraped.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let requests: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "execstore_graphql_requests_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(requests, 2.0, "{scraped}");
}
