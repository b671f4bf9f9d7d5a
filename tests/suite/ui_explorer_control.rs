//! Run control in the explorer, in headless Chromium: Pause, Resume,
//! "Retry failed" on a run and Cancel on an inner execution, each asking
//! first with how many executions it touches (No changes nothing); the tree
//! follows by the live events; a refused action is shown as such. Nothing
//! leaves 127.0.0.1.

use std::time::Duration;

use serde_json::{json, Value};

use crate::api_support::Api;
use crate::browser::{click, eval, tree_row as row, wait_until, Chromium};
use crate::harness::Backend;

const GET: &str = "query($id: ID!) { execution(id: $id) { status paused } }";

async fn execution(api: &Api, id: &str, parent: Option<&str>, status: &str) {
    let input = json!({ "id": id, "flowId": "ctl", "ownerId": "o", "parentExecutionId": parent, "status": status });
    api.ok(
        "mutation($i: CreateExecutionInput!) { createExecution(input: $i) { id } }",
        json!({ "i": input }),
    )
    .await;
}

async fn status(api: &Api, id: &str) -> (String, bool) {
    let x = api.ok(GET, json!({ "id": id })).await["execution"].clone();
    (
        x["status"].as_str().unwrap().to_owned(),
        x["paused"].as_bool().unwrap(),
    )
}

const WAIT: Duration = Duration::from_secs(15);

/// Clicks the details pane's `action` button and waits for its question.
async fn ask(page: &chromiumoxide::Page, action: &str) -> String {
    wait_until(
        page,
        &format!("document.querySelector('#controls button[data-action={action}]')"),
        WAIT,
    )
    .await;
    click(
        page,
        &format!("document.querySelector('#controls button[data-action={action}]')"),
    )
    .await;
    wait_until(page, "document.getElementById('confirm').open", WAIT).await;
    eval(page, "document.getElementById('confirm-text').textContent").await
}

async fn answer(page: &chromiumoxide::Page, yes: bool) {
    let button = if yes { "confirm-yes" } else { "confirm-no" };
    click(page, &format!("document.getElementById('{button}')")).await;
    wait_until(page, "!document.getElementById('confirm').open", WAIT).await;
}

/// Waits until `id`'s row in the tree shows `status` (lower case).
async fn row_shows(page: &chromiumoxide::Page, id: &str, status: &str) {
    wait_until(
        page,
        &format!(
            "{}.querySelector('.badge').textContent === '{status}'",
            row(id)
        ),
        WAIT,
    )
    .await;
}

async fn controls_in_the_explorer(backend: Backend) {
    let api = Api::new(backend).await;
    // R: R.a (created), R.b (failed), R.c (created) with R.c.1.
    execution(&api, "R", None, "RUNNING").await;
    execution(&api, "R.a", Some("R"), "CREATED").await;
    execution(&api, "R.b", Some("R"), "FAILED").await;
    execution(&api, "R.c", Some("R"), "CREATED").await;
    execution(&api, "R.c.1", Some("R.c"), "CREATED").await;
    let addr = api.serve().await;
    let chromium = Chromium::launch().await;
    let page = chromium
        .open(&format!("http://{addr}/explorer?flow=ctl&run=R"))
        .await;
    wait_until(&page, &row("R.c"), WAIT).await;

    // Pause the run: the four unfinished executions are named; the tree
    // follows.
    let question = ask(&page, "pause").await;
    assert!(
        question.contains("run R") && question.contains("4 unfinished executions"),
        "{question}"
    );
    answer(&page, true).await;
    row_shows(&page, "R.a", "paused").await;
    assert_eq!(status(&api, "R.a").await, ("PAUSED".into(), true));
    assert_eq!(status(&api, "R").await, ("RUNNING".into(), true));

    // Resume: the marked and PAUSED ones.
    let question = ask(&page, "resume").await;
    assert!(question.contains("4 paused executions"), "{question}");
    answer(&page, true).await;
    row_shows(&page, "R.a", "created").await;
    assert_eq!(status(&api, "R.c.1").await, ("CREATED".into(), false));

    // Retry failed: No changes nothing; Yes puts R.b back.
    let question = ask(&page, "retry").await;
    assert!(question.contains("1 failed execution "), "{question}");
    answer(&page, false).await;
    assert_eq!(status(&api, "R.b").await.0, "FAILED");
    ask(&page, "retry").await;
    answer(&page, true).await;
    row_shows(&page, "R.b", "created").await;

    // Cancel an inner execution: it and the one below it.
    click(&page, &format!("{}.querySelector('.id')", row("R.c"))).await;
    wait_until(
        &page,
        "document.querySelector('#details h2').textContent === 'R.c'",
        WAIT,
    )
    .await;
    let question = ask(&page, "cancel").await;
    assert!(
        question.contains("R.c and everything below it")
            && question.contains("2 unfinished executions"),
        "{question}"
    );
    answer(&page, true).await;
    row_shows(&page, "R.c", "stopped").await;
    assert_eq!(status(&api, "R.c.1").await.0, "STOPPED");
    assert_eq!(status(&api, "R.a").await.0, "CREATED", "a sibling runs on");
    let errors: Vec<String> = eval(&page, "window.explorer.errors").await;
    assert!(errors.is_empty(), "{errors:?}");

    // Refused: the run is deleted while the question is open.
    click(&page, &format!("{}.querySelector('.id')", row("R"))).await;
    wait_until(
        &page,
        "document.querySelector('#details h2').textContent === 'R'",
        WAIT,
    )
    .await;
    ask(&page, "cancel").await;
    let deleted = api
        .ok("mutation { deleteExecution(id: \"R\") }", json!({}))
        .await;
    assert_eq!(deleted["deleteExecution"], Value::Bool(true));
    answer(&page, true).await;
    wait_until(
        &page,
        "document.getElementById('message').textContent.includes('cancel refused: NOT_FOUND')",
        WAIT,
    )
    .await;
    chromium.close_with_nothing_sent_outside().await;
}

/// A run with `maxConcurrency` shows its limit and how many of its
/// executions run now; an execution with a `concurrencyKey` shows its key.
async fn a_limited_run_shows_its_limit(backend: Backend) {
    let api = Api::new(backend).await;
    let create = "mutation($i: CreateExecutionInput!) { createExecution(input: $i) { id } }";
    for input in [
        json!({ "id": "L", "flowId": "lim", "ownerId": "o", "status": "RUNNING",
                "options": { "execution": { "maxConcurrency": 2 } } }),
        json!({ "id": "L.a", "flowId": "lim", "ownerId": "o", "parentExecutionId": "L",
                "status": "RUNNING", "concurrencyKey": "payments-api" }),
        json!({ "id": "L.b", "flowId": "lim", "ownerId": "o", "parentExecutionId": "L" }),
    ] {
        api.ok(create, json!({ "i": input })).await;
    }
    let addr = api.serve().await;
    let chromium = Chromium::launch().await;
    let page = chromium
        .open(&format!("http://{addr}/explorer?flow=lim&run=L"))
        .await;
    wait_until(&page, &row("L.b"), WAIT).await;
    let details = "document.getElementById('details').textContent";
    click(&page, &format!("{}.querySelector('.id')", row("L"))).await;
    wait_until(
        &page,
        &format!("{details}.includes('maxConcurrency2 (executions RUNNING now: 1)')"),
        WAIT,
    )
    .await;
    click(&page, &format!("{}.querySelector('.id')", row("L.a"))).await;
    wait_until(
        &page,
        &format!("{details}.includes('concurrencyKeypayments-api')"),
        WAIT,
    )
    .await;
    let shown: String = eval(&page, details).await;
    assert!(
        !shown.contains("maxConcurrency"),
        "only on the run: {shown}"
    );
    let errors: Vec<String> = eval(&page, "window.explorer.errors").await;
    assert!(errors.is_empty(), "{errors:?}");
    chromium.close_with_nothing_sent_outside().await;
}

crate::both_backends!(controls_in_the_explorer, a_limited_run_shows_its_limit);
