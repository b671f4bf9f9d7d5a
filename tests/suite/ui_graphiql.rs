//! GraphiQL as a person meets it, in headless Chromium: the page served by
//! execstore from its own embedded assets, a query run through the page,
//! the docs pane, the explorer, a subscription over /graphql/ws; and not one
//! request leaving 127.0.0.1.

use std::time::Duration;

use serde_json::json;

use crate::api_support::{create, Api};
use crate::browser::{eval, screenshot, wait_until, Chromium};
use crate::harness::Backend;

const EDITOR: &str = "document.querySelector('.graphiql-query-editor .CodeMirror')";
const RESULT: &str =
    "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()";

async fn run_in_page(page: &chromiumoxide::Page, query: &str) {
    let set = format!("{EDITOR}.CodeMirror.setValue({})", json!(query));
    let _: serde_json::Value = eval(page, &format!("({set}, true)")).await;
    // GraphiQL parses the editor's text a moment after a change (debounced)
    // and decides HTTP or websocket from that parse: run once it is current.
    let parsed = format!(
        "{EDITOR}.CodeMirror.documentAST && {EDITOR}.CodeMirror.documentAST.loc.source.body === {EDITOR}.CodeMirror.getValue()"
    );
    wait_until(page, &parsed, Duration::from_secs(10)).await;
    let _: serde_json::Value = eval(
        page,
        "(document.querySelector('.graphiql-execute-button').click(), true)",
    )
    .await;
}

async fn graphiql_works_offline(backend: Backend) {
    let api = Api::new(backend).await;
    create(&api, "demo", None).await;
    create(&api, "demo.a", Some("demo")).await;
    create(&api, "demo.b", Some("demo")).await;
    let addr = api.serve().await;

    let chromium = Chromium::launch().await;
    let page = chromium.open(&format!("http://{addr}/graphql")).await;
    wait_until(&page, EDITOR, Duration::from_secs(30)).await;

    // A query typed into the editor and run from the page.
    run_in_page(
        &page,
        "{ execution(id: \"demo\") { id status childCount } }",
    )
    .await;
    wait_until(
        &page,
        &format!("{RESULT}.includes('\"childCount\": 2')"),
        Duration::from_secs(15),
    )
    .await;
    let shown: String = eval(&page, RESULT).await;
    let shown: serde_json::Value =
        serde_json::from_str(&shown).expect("the result pane holds JSON");
    assert_eq!(
        shown,
        json!({ "data": { "execution": { "id": "demo", "status": "CREATED", "childCount": 2 } } })
    );

    // The docs pane, from introspection.
    let _: serde_json::Value = eval(
        &page,
        "(document.querySelector('[aria-label=\"Show Documentation Explorer\"]').click(), true)",
    )
    .await;
    wait_until(
        &page,
        "document.querySelector('.graphiql-doc-explorer').innerText.includes('Mutation')",
        Duration::from_secs(15),
    )
    .await;

    // The explorer plugin lists the root fields.
    let _: serde_json::Value = eval(
        &page,
        "(document.querySelector('[aria-label=\"Show GraphiQL Explorer\"]').click(), true)",
    )
    .await;
    wait_until(
        &page,
        "document.querySelector('.docExplorerWrap') && document.querySelector('.docExplorerWrap').innerText.includes('rootExecutions')",
        Duration::from_secs(15),
    )
    .await;

    // A subscription through the page, over /graphql/ws.
    run_in_page(
        &page,
        "subscription { executionEvents(rootExecutionId: \"demo\") { kind executionId } }",
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !api.store.events().has_subscribers() {
        if std::time::Instant::now() >= deadline {
            let shown: String = eval(&page, RESULT).await;
            panic!("the page never subscribed; result pane: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    create(&api, "demo.c", Some("demo")).await;
    wait_until(
        &page,
        &format!("{RESULT}.includes('demo.c') && {RESULT}.includes('CREATED')"),
        Duration::from_secs(15),
    )
    .await;

    let shot = screenshot(&page, &format!("graphiql-{backend:?}")).await;
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );
    chromium.close_with_nothing_sent_outside().await;
}

crate::both_backends!(graphiql_works_offline);
