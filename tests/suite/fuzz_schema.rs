//! The whole schema fuzzed by a property-based tester nobody here wrote:
//! schemathesis (PyPI, installed into tests/fuzz/.venv by scripts/test.sh)
//! reads the schema by introspection and sends generated operations — valid
//! ones and ones that break it — at every query and mutation field, then
//! chains them statefully. Over at least 10,000 requests per backend: no 5xx,
//! no `INTERNAL`, every error carries a code, nothing leaks, and the server
//! serves afterwards.
//!
//! Its own verdict is not ours: it counts every answer that has `errors` as
//! a failure, domain errors such as NOT_FOUND included, so its exit status is
//! ignored and its HAR report (every request with its answer) is read here.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use execstore::config::Config;
use serde_json::{json, Value};

use crate::api_support::Api;
use crate::fuzz::LEAKS;
use crate::harness::Backend;

const REQUESTS_AT_LEAST: usize = 10_000;

/// Examples per operation: the schema has 34 operations, of which a few
/// (those without arguments) run out of distinct examples early; 330 gives
/// about 11,500 requests.
const EXAMPLES_PER_OPERATION: &str = "330";

/// A run whose ids tests/fuzz/schemathesis.toml hands the fuzzer, so that a
/// share of the operations reach the store's logic rather than NOT_FOUND.
async fn create_the_known_run(api: &Api) {
    let create =
        "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id } }";
    for (id, parent) in [
        ("fuzz-root", None),
        ("fuzz-child-a", Some("fuzz-root")),
        ("fuzz-child-b", Some("fuzz-root")),
        ("fuzz-grandchild", Some("fuzz-child-a")),
    ] {
        let input = json!({ "id": id, "flowId": "fuzz-flow", "ownerId": "fuzz-owner", "parentExecutionId": parent });
        api.ok(create, json!({ "input": input })).await;
    }
}

fn schemathesis(url: &str, har: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("tests/fuzz/.venv/bin/schemathesis");
    assert!(
        binary.is_file(),
        "{} is missing: run the suite through scripts/test.sh, which installs it",
        binary.display()
    );
    let seed = std::env::var("EXECSTORE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261203".into());
    Command::new(binary)
        .arg("--config-file")
        .arg(root.join("tests/fuzz/schemathesis.toml"))
        .args(["--no-color", "run", url])
        .args(["--max-examples", EXAMPLES_PER_OPERATION])
        .args(["--seed", &seed])
        .args(["--continue-on-failure", "--no-shrink"])
        .args(["--generation-database", "none"])
        .args(["--checks", "not_a_server_error"])
        .args(["--request-timeout", "30"])
        .args(["--report", "har", "--report-har-path"])
        .arg(har)
        .env(
            "HYPOTHESIS_STORAGE_DIRECTORY",
            har.with_extension("hypothesis"),
        )
        .current_dir(har.parent().unwrap())
        .output()
        .expect("schemathesis runs")
}

/// What one answer of the run says, checked as it is read.
#[derive(Default)]
struct Tally {
    requests: usize,
    statuses: BTreeMap<u16, usize>,
    codes: BTreeMap<String, usize>,
    answered_without_errors: usize,
}

impl Tally {
    fn read(&mut self, entry: &Value) {
        let sent = entry["request"]["postData"]["text"]
            .as_str()
            .unwrap_or_default();
        let shown: String = sent.chars().take(400).collect();
        let status = entry["response"]["status"].as_u64().expect("a status") as u16;
        let text = entry["response"]["content"]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("an answer without a text body for {shown}: {entry}"));
        self.requests += 1;
        *self.statuses.entry(status).or_default() += 1;
        assert!(status < 500, "{status} for {shown}: {text}");
        for leak in LEAKS {
            // Error messages may quote what was sent: only what the request
            // did not carry is a leak.
            assert!(
                !text.contains(leak) || sent.contains(leak),
                "the answer leaks {leak:?} for {shown}: {text}"
            );
        }
        let answer: Value = serde_json::from_str(text)
            .unwrap_or_else(|_| panic!("a JSON answer for {shown}, got {status}: {text}"));
        let errors = answer["errors"].as_array().cloned().unwrap_or_default();
        if errors.is_empty() {
            self.answered_without_errors += 1;
        }
        for error in errors {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("an error without a code for {shown}: {text}"));
            assert_ne!(code, "INTERNAL", "for {shown}: {text}");
            *self.codes.entry(code.to_owned()).or_default() += 1;
        }
    }
}

async fn schemathesis_over_the_whole_schema(backend: Backend) {
    // `claimNextExecutions(waitMs:)` may wait as long as the server allows:
    // a short bound keeps the run's length in the generator's hands.
    let mut config = Config::defaults();
    config.max_wait = Duration::from_millis(200);
    let api = Api::with_config(backend, config).await;
    create_the_known_run(&api).await;
    let url = format!("http://{}/graphql", api.serve().await);
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("fuzz.har");
    let run = {
        let har = har.clone();
        tokio::task::spawn_blocking(move || schemathesis(&url, &har))
            .await
            .unwrap()
    };
    let output = || {
        let stdout = String::from_utf8_lossy(&run.stdout);
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        format!(
            "{}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&run.stderr)
        )
    };
    let report = std::fs::read_to_string(&har)
        .unwrap_or_else(|e| panic!("no HAR report ({e}); schemathesis said:\n{}", output()));
    let report: Value = serde_json::from_str(&report).expect("the HAR report is JSON");
    let mut tally = Tally::default();
    for entry in report["log"]["entries"].as_array().expect("HAR entries") {
        tally.read(entry);
    }
    assert!(
        tally.requests >= REQUESTS_AT_LEAST,
        "only {} requests were sent; schemathesis said:\n{}",
        tally.requests,
        output()
    );
    // A run that never got past validation would prove little.
    assert!(
        tally.answered_without_errors >= tally.requests / 10,
        "only {} of {} answers had no errors",
        tally.answered_without_errors,
        tally.requests
    );

    let (status, body) = api
        .raw(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    api.ok("{ flows { nodes { flowId } } }", json!({})).await;
    println!(
        "schemathesis {backend:?}: {} requests, {} without errors, statuses {:?}, codes {:?}",
        tally.requests, tally.answered_without_errors, tally.statuses, tally.codes
    );
}

crate::both_backends!(schemathesis_over_the_whole_schema);
