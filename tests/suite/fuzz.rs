//! Throws thousands of mutated GraphQL documents, variables and raw bodies at
//! the real router. Whatever comes in: no panic, no 5xx (the database is up),
//! no SQL, file paths or stack traces in any answer, and /healthz still 200.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::api_support::{create, Api};
use crate::harness::Backend;

/// xorshift64*: deterministic, so a failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SEEDS: &[&str] = &[
    "query($id: ID!) { execution(id: $id) { id status parent { id } root { id } children { id childCount children { id claim { status } } } recoveryHistory { id } } }",
    "query($after: String, $first: Int) { childFeed(rootExecutionId: \"root\", first: $first, after: $after) { edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor } } }",
    "{ rootExecutions(flowId: \"flow-1\", first: 3) { nodes { levels totalNested execution { id options } } } }",
    "{ executionTree(executionId: \"a\") { id parentId level execution { status } } }",
    "{ directChildFeed(parentExecutionId: \"root\") { nodes { id } } executionStats(rootExecutionId: \"root\") { total completedPerMinute } }",
    "{ activeClaims { executionId expiresAt execution { id } } claim(executionId: \"a\") { status } executionsNeedingRecovery(limit: 5) { id } }",
    "mutation($input: CreateExecutionInput!) { createExecution(input: $input) { id executionDepth } }",
    "mutation { updateExecutionStatus(input: { executionId: \"a\", status: RUNNING, failureCount: 1 }) { id startedAt } }",
    "mutation($w: String!) { claimExecution(executionId: \"a\", workerId: $w, timeoutMs: 1000) { acquired rejection claim { workerId } } }",
    "mutation { claimNextExecutions(workerId: \"w\", timeoutMs: 500, limit: 2) { id } extendClaim(executionId: \"a\", workerId: \"w\", timeoutMs: 10) }",
    "mutation { releaseExecution(executionId: \"a\", workerId: \"w\") expireOldClaims updateFailureInfo(executionId: \"b\", failureCount: 2, reason: \"r\") }",
    "mutation { recordRecovery(input: { executionId: \"b\", workerId: \"w\", reason: \"x\" }) { id } tryAcquireRecoveryLock(lockId: 3, holderId: \"h\", ttlMs: 100) releaseRecoveryLock(lockId: 3, holderId: \"h\") }",
    "mutation { deleteExecution(id: \"zz\") }",
    "fragment F on Execution { id status } query { execution(id: \"root\") { ...F children { ...F } } }",
];

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    ":",
    "\"",
    "$id",
    "...",
    "children",
    "first: -1",
    "first: 99999999999",
    "after: \"zz\"",
    "\u{0}",
    "@skip(if: true)",
    "@include(if: $x)",
    "fragment G on Query { __typename }",
    "__typename",
    "null",
    "id: \"\"",
    "timeoutMs: -5",
    "limit: 0",
    "status: NOPE",
    "\\u0000",
    "#",
    "mutation",
    "subscription",
    "query Q",
    "'; DROP TABLE executions; --",
    "é",
    "\u{202e}",
    "1e309",
    "[",
    "]",
    "!",
    "=",
    "|",
    "&",
    "$",
    "\n",
    "\t",
];

fn mutate_document(rng: &mut Rng, doc: &str) -> String {
    let mut bytes: Vec<char> = doc.chars().collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = char::from_u32(rng.below(0x3000) as u32).unwrap_or('?');
            }
            1 => {
                let token: Vec<char> = rng.pick(TOKENS).chars().collect();
                bytes.splice(at..at, token);
            }
            2 if !bytes.is_empty() => {
                let end = (at + rng.below(12)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            3 if !bytes.is_empty() => {
                let end = (at + rng.below(30)).min(bytes.len());
                let span: Vec<char> = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, span);
            }
            4 => bytes.truncate(at),
            _ => {
                let token: Vec<char> = rng.pick(TOKENS).chars().collect();
                bytes.extend(token);
            }
        }
    }
    bytes.into_iter().collect()
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.next() as i64),
        2 => json!(rng.pick(&[
            0,
            -1,
            1,
            500,
            501,
            86_400_001,
            i32::MAX as i64 + 1,
            i64::MIN
        ])),
        3 => json!(rng.pick(TOKENS).repeat(rng.below(50))),
        4 => json!(rng.below(2) == 0),
        5 => json!(rng.pick(&[
            "root",
            "a",
            "b",
            "",
            "x".repeat(300).as_str(),
            "bm90LWEtY3Vyc29y"
        ])),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "id",
                "flowId",
                "ownerId",
                "parentExecutionId",
                "status",
                "options",
                "input",
                "w",
                "after",
                "first",
            ];
            Value::Object(
                (0..rng.below(6))
                    .map(|_| (rng.pick(&keys).to_string(), random_json(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

fn valid_variables(rng: &mut Rng) -> Value {
    json!({
        "id": rng.pick(&["root", "a", "nope"]),
        "w": format!("w{}", rng.below(3)),
        "first": rng.pick(&[1, 2, 50]),
        "after": Value::Null,
        "input": { "flowId": "flow-1", "ownerId": "owner-1", "parentExecutionId": rng.pick(&["root", "a", "ghost"]), "options": { "n": rng.below(10) } },
    })
}

fn raw_body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        1 => format!("{}{}", "[".repeat(rng.below(5000)), "]".repeat(rng.below(5000))).into_bytes(),
        2 => {
            let seed = json!({ "query": rng.pick(SEEDS), "variables": valid_variables(rng) }).to_string();
            let cut = rng.below(seed.len());
            seed.as_bytes()[..cut].to_vec()
        }
        3 => json!({ "query": rng.pick(SEEDS), "operationName": rng.pick(&["", "Nope", "F"]), "extensions": random_json(rng, 0) }).to_string().into_bytes(),
        4 => Value::Array((0..rng.below(20)).map(|_| json!({ "query": rng.pick(SEEDS) })).collect()).to_string().into_bytes(),
        _ => random_json(rng, 0).to_string().into_bytes(),
    }
}

pub const LEAKS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE executions",
    "sqlx",
    "sqlite",
    "postgres",
    "/root/",
    "/work/",
    ".rs:",
    "panicked",
    "stack backtrace",
    "RUST_BACKTRACE",
];

async fn fuzz_router(backend: Backend) {
    let cases: usize = std::env::var("EXECSTORE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("EXECSTORE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_1234);
    let api = Api::new(backend).await;
    create(&api, "root", None).await;
    create(&api, "a", Some("root")).await;
    create(&api, "b", Some("a")).await;
    let mut rng = Rng(seed | 1);
    let mut statuses = std::collections::BTreeMap::new();
    for case in 0..cases {
        let body: Vec<u8> = match rng.below(3) {
            0 => {
                let doc = rng_pick_seed(&mut rng);
                json!({ "query": mutate_document(&mut rng, doc), "variables": valid_variables(&mut rng) }).to_string().into_bytes()
            }
            1 => json!({ "query": rng_pick_seed(&mut rng), "variables": random_json(&mut rng, 0) })
                .to_string()
                .into_bytes(),
            _ => raw_body(&mut rng),
        };
        let content_type = if rng.below(20) == 0 {
            "text/plain"
        } else {
            "application/json"
        };
        let request = Request::post("/graphql")
            .header("content-type", content_type)
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, text) = api.raw(request).await;
        *statuses.entry(status.as_u16()).or_insert(0usize) += 1;
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>();
        assert!(
            !status.is_server_error(),
            "case {case} (seed {seed}): {status} for {shown:?}: {text}"
        );
        for leak in LEAKS {
            assert!(
                !text.contains(leak),
                "case {case} (seed {seed}): answer leaks {leak:?} for {shown:?}: {text}"
            );
        }
    }
    let (status, body) = api
        .raw(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "ok"));
    api.ok("{ execution(id: \"root\") { id } }", json!({}))
        .await;
    println!("fuzz {backend:?}: {cases} inputs, statuses {statuses:?}");
}

fn rng_pick_seed(rng: &mut Rng) -> &'static str {
    SEEDS[rng.below(SEEDS.len())]
}

crate::both_backends!(fuzz_router);
