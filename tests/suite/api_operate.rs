//! What an operator sees: `GET /metrics` (parsed as Prometheus text) moving
//! when work runs.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::api_support::{create, Api};
use crate::harness::Backend;

/// One scrape: every sample by name and labels (`name{k="v",…}` sorted).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(api: &Api) -> Scrape {
        let (status, text) = api
            .raw(Request::get("/metrics").body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, 200, "{text}");
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
        let mut samples = HashMap::new();
        for sample in scrape.samples {
            let mut labels: Vec<_> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => continue,
            };
            samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Scrape(samples)
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }
}

/// The process-wide counters are shared with tests running beside this one,
/// so counters are checked as "moved by at least what this test did".
async fn metrics_move_when_work_runs(backend: Backend) {
    let api = Api::new(backend).await;
    let flow = format!("metrics-{}", uuid::Uuid::now_v7().simple());
    let before = Scrape::of(&api).await;

    for i in 0..5 {
        let input = json!({ "id": format!("{flow}-{i}"), "flowId": flow, "ownerId": "o" });
        api.ok(crate::api_support::CREATE, json!({ "input": input }))
            .await;
    }
    let depth = Scrape::of(&api).await;
    assert_eq!(
        depth.get(&format!(
            "execstore_queue_claimable_by_flow{{flow_id=\"{flow}\"}}"
        )),
        5.0
    );
    assert!(depth.get("execstore_queue_claimable{}") >= 5.0);

    let claim = |id: String, worker: &str| {
        format!("mutation {{ claimExecution(executionId: \"{id}\", workerId: \"{worker}\", timeoutMs: 60000) {{ acquired }} }}")
    };
    api.ok(&claim(format!("{flow}-0"), "w1"), json!({})).await;
    api.ok(&claim(format!("{flow}-0"), "w2"), json!({})).await;
    api.ok(&claim("no-such-execution".into(), "w1"), json!({}))
        .await;
    let pulled = api
        .ok(
            &format!("mutation {{ claimNextExecutions(workerId: \"w3\", timeoutMs: 60000, flowId: \"{flow}\", limit: 3) {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(pulled["claimNextExecutions"].as_array().unwrap().len(), 3);
    assert_eq!(
        api.error_code("{ nosuchfield }", json!({})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        api.error_code("{ execution(id: \"\") { id } }", json!({}))
            .await,
        "BAD_USER_INPUT"
    );

    // A live subscription is counted while it is open.
    create(&api, &format!("{flow}-root"), None).await;
    let addr = api.serve().await;
    let ws = crate::api_server::subscribe(
        &api,
        addr,
        json!({}),
        &format!("subscription {{ executionEvents(rootExecutionId: \"{flow}-root\") {{ kind }} }}"),
    )
    .await;
    let after = Scrape::of(&api).await;
    drop(ws);

    let moved = |key: &str| after.get(key) - before.get(key);
    assert!(moved("execstore_claims_total{outcome=\"acquired\"}") >= 1.0);
    assert!(moved("execstore_claims_total{outcome=\"held_by_other\"}") >= 1.0);
    assert!(moved("execstore_claims_total{outcome=\"not_found\"}") >= 1.0);
    assert!(moved("execstore_claim_next_executions_total{}") >= 3.0);
    // This test's database logged its creates, claims and pulls.
    assert!(after.get("execstore_event_log_events{}") >= 5.0 + 1.0 + 3.0);
    assert!(after.get("execstore_event_subscribers{}") >= 1.0);
    assert!(
        moved("execstore_graphql_requests_total{operation=\"mutation\",outcome=\"ok\"}") >= 9.0
    );
    assert!(
        moved("execstore_graphql_requests_total{operation=\"query\",outcome=\"error\"}") >= 2.0
    );
    assert!(
        moved("execstore_graphql_request_duration_seconds_count{operation=\"mutation\",outcome=\"ok\"}") >= 9.0
            || moved("execstore_graphql_request_duration_seconds{operation=\"mutation\",outcome=\"ok\"}") >= 9.0,
        "latency histogram recorded"
    );
    assert!(moved("execstore_graphql_errors_total{code=\"BAD_USER_INPUT\"}") >= 2.0);
    assert!(moved("execstore_http_responses_total{status=\"200\"}") >= 12.0);
    // The create document was sent 5 times: parsed at most once, then reused.
    assert!(moved("execstore_graphql_documents_total{how=\"reused\"}") >= 4.0);
    assert!(after.get("execstore_subscriptions_live{}") >= 1.0);
    assert!(after.get("execstore_db_pool_connections_max{}") >= 1.0);
    assert!(after.get("execstore_db_pool_connections{}") >= 1.0);
    assert!(
        after.get("execstore_db_pool_connections_in_use{}")
            <= after.get("execstore_db_pool_connections{}")
    );
    assert_eq!(
        after.get(&format!(
            "execstore_queue_claimable_by_flow{{flow_id=\"{flow}\"}}"
        )),
        1.0,
        "5 created, 1 claimed by id, 3 pulled"
    );
    // The last one pulled: the flow's gauge drops to 0, not stays at 1.
    api.ok(
        &format!("mutation {{ claimNextExecutions(workerId: \"w3\", timeoutMs: 60000, flowId: \"{flow}\") {{ id }} }}"),
        json!({}),
    )
    .await;
    let drained = Scrape::of(&api).await;
    assert_eq!(
        drained.get(&format!(
            "execstore_queue_claimable_by_flow{{flow_id=\"{flow}\"}}"
        )),
        0.0
    );
}

crate::both_backends!(metrics_move_when_work_runs);
