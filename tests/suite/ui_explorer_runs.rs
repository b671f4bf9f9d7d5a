//! The explorer on a real run (a root with 5,000 children, 51 failures, one
//! of them two levels down) in headless Chromium: the home page lists the
//! flows; "Failed" lists the run's failures from the server and reveals a
//! deep one in the tree; the URL follows the view, a copied link reopens
//! it, back and forward work; scrolling the 5,000 children loads them in
//! windows with the DOM kept small; "⇥ end" loads the last ones; the
//! slowest path is marked. Every
//! query the page sends is answered without an error (so each one is valid
//! against the schema), and nothing leaves 127.0.0.1.

use std::time::Duration;

use entity::execution;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::Value;

use crate::api_support::Api;
use crate::browser::{click, eval, screenshot, tree_row as row, wait_until, Chromium};
use crate::harness::Backend;

const CHILDREN: usize = 5_000;
const DEEP_FAILURE: &str = "R.c2500.g7";

/// Flows `other-1`, `other-2` (older runs) and `big-run`: run R with
/// children R.c0000…R.c4999 (every 100th failed), R.c2500 with ten
/// children of which R.c2500.g7 failed ("deep failure").
async fn seed(api: &Api) {
    let at = execstore::store::now();
    let mut rows = Vec::new();
    let mut add = |id: String,
                   flow: &str,
                   parent: Option<&str>,
                   root: &str,
                   depth: i32,
                   ms: i64,
                   failed: bool| {
        let created = at + chrono::Duration::milliseconds(ms);
        rows.push(execution::ActiveModel {
            id: Set(id),
            flow_id: Set(flow.into()),
            owner_id: Set("o".into()),
            root_execution_id: Set(root.into()),
            parent_execution_id: Set(parent.map(str::to_owned)),
            status: Set(if failed {
                execstore::store::ExecutionStatus::Failed
            } else {
                execstore::store::ExecutionStatus::Completed
            }),
            error_message: Set(failed.then(|| "deep failure".to_owned())),
            execution_depth: Set(depth),
            created_at: Set(created),
            updated_at: Set(created),
            started_at: Set(Some(created)),
            completed_at: Set(Some(created + chrono::Duration::milliseconds(5))),
            failure_count: Set(0),
            ..Default::default()
        });
    };
    add("o1".into(), "other-1", None, "o1", 0, -20_000, false);
    add("o2".into(), "other-2", None, "o2", 0, -10_000, false);
    add("R".into(), "big-run", None, "R", 0, 0, false);
    for i in 0..CHILDREN {
        add(
            format!("R.c{i:04}"),
            "big-run",
            Some("R"),
            "R",
            1,
            1 + i as i64,
            i % 100 == 0,
        );
    }
    for g in 0..10 {
        let id = format!("R.c2500.g{g}");
        let failed = id == DEEP_FAILURE;
        add(id, "big-run", Some("R.c2500"), "R", 2, 10_000 + g, failed);
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(500).collect();
        execution::Entity::insert_many(chunk)
            .exec(&api.t.db)
            .await
            .unwrap();
    }
}

async fn no_errors(page: &chromiumoxide::Page) {
    let errors: Vec<String> = eval(page, "window.explorer.errors").await;
    assert!(errors.is_empty(), "the page got errors: {errors:?}");
    let sent: u64 = eval(page, "window.explorer.requests").await;
    assert!(sent > 0);
}

async fn flows_find_reveal_and_links(backend: Backend) {
    let api = Api::new(backend).await;
    seed(&api).await;
    let addr = api.serve().await;
    let chromium = Chromium::launch().await;

    // Home: the flows, newest run first.
    let page = chromium.open(&format!("http://{addr}/explorer")).await;
    wait_until(
        &page,
        "document.querySelectorAll('#flow-rows tr').length === 3",
        Duration::from_secs(20),
    )
    .await;
    let flows: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#flow-rows tr')].map(tr => tr.dataset.flow)",
    )
    .await;
    assert_eq!(flows, ["big-run", "other-2", "other-1"]);
    screenshot(&page, &format!("explorer-flows-{backend:?}")).await;

    // A flow → its runs (the table fits its column at 1400 px).
    click(
        &page,
        "document.querySelector('#flow-rows tr[data-flow=\"big-run\"]')",
    )
    .await;
    wait_until(
        &page,
        "document.querySelector('#run-rows tr[data-id=\"R\"]')",
        Duration::from_secs(10),
    )
    .await;
    assert!(eval::<String>(&page, "location.search")
        .await
        .contains("flow=big-run"));
    let fits: bool = eval(&page, "document.querySelector('#runs table').scrollWidth <= document.getElementById('lists').clientWidth").await;
    assert!(fits, "the runs table fits its column");

    // The run: its first window of children, and the status boxes.
    click(
        &page,
        "document.querySelector('#run-rows tr[data-id=\"R\"]')",
    )
    .await;
    wait_until(&page, &row("R.c0005"), Duration::from_secs(10)).await;
    wait_until(
        &page,
        "document.querySelector('.status-box[data-status=FAILED]')",
        Duration::from_secs(10),
    )
    .await;
    let failed_box: String = eval(
        &page,
        "document.querySelector('.status-box[data-status=FAILED]').innerText",
    )
    .await;
    assert!(failed_box.contains("51"), "{failed_box}");
    assert!(eval::<String>(&page, "location.search")
        .await
        .contains("run=R"));

    // "Failed": the run's failures from the server, newest first, paged.
    click(
        &page,
        "document.querySelector('.status-box[data-status=FAILED]')",
    )
    .await;
    wait_until(
        &page,
        "document.querySelectorAll('#found-rows li').length === 50",
        Duration::from_secs(10),
    )
    .await;
    let first: String = eval(&page, "document.querySelector('#found-rows li').dataset.id").await;
    assert_eq!(first, DEEP_FAILURE);
    click(&page, "document.getElementById('more-found')").await;
    wait_until(
        &page,
        "document.querySelectorAll('#found-rows li').length === 51",
        Duration::from_secs(10),
    )
    .await;

    // Choosing the deep failure reveals it: its ancestors opened, the row
    // selected and on screen, its details shown.
    click(
        &page,
        &format!("document.querySelector('#found-rows li[data-id=\"{DEEP_FAILURE}\"]')"),
    )
    .await;
    wait_until(
        &page,
        &format!("{}.classList.contains('selected')", row(DEEP_FAILURE)),
        Duration::from_secs(10),
    )
    .await;
    wait_until(&page, &format!("document.querySelector('#details h2') && document.querySelector('#details h2').innerText === '{DEEP_FAILURE}'"), Duration::from_secs(10)).await;
    let on_screen: bool = eval(&page, &format!("(() => {{ const r = {}.getBoundingClientRect(), t = document.getElementById('tree').getBoundingClientRect(); return r.top >= t.top && r.bottom <= t.bottom; }})()", row(DEEP_FAILURE))).await;
    assert!(on_screen, "the revealed row is scrolled into view");
    let in_dom: usize = eval(&page, "document.querySelectorAll('#tree .row').length").await;
    assert!(in_dom <= 200, "{in_dom} rows in the DOM");
    let url: String = eval(&page, "location.href").await;
    assert!(url.contains(&format!("execution={DEEP_FAILURE}")), "{url}");
    // The slowest path: R → R.c2500 → R.c2500.g9, the execution that
    // finished last among those loaded.
    let critical: Vec<String> = eval(
        &page,
        "[...document.querySelectorAll('#tree .row.critical')].map(r => r.dataset.id)",
    )
    .await;
    assert!(
        critical.contains(&"R.c2500".to_owned()) && critical.contains(&"R.c2500.g9".to_owned()),
        "{critical:?}"
    );
    assert!(!critical.contains(&DEEP_FAILURE.to_owned()));
    screenshot(&page, &format!("explorer-reveal-{backend:?}")).await;

    // The link, opened elsewhere, restores the run and the selection.
    let copy = chromium.open(&url).await;
    wait_until(
        &copy,
        &format!(
            "{} && {}.classList.contains('selected')",
            row(DEEP_FAILURE),
            row(DEEP_FAILURE)
        ),
        Duration::from_secs(20),
    )
    .await;
    let title: String = eval(&copy, "document.getElementById('tree-title').innerText").await;
    assert_eq!(title, "R");
    no_errors(&copy).await;

    // Back: the run without the selection; forward: the selection again.
    // (The first tab to the front again: a hidden tab draws no frames.)
    page.bring_to_front().await.expect("bring to front");
    let _: Value = eval(&page, "(history.back(), true)").await;
    wait_until(
        &page,
        "!location.search.includes('execution=')",
        Duration::from_secs(10),
    )
    .await;
    wait_until(
        &page,
        &format!("{}.classList.contains('selected')", row("R")),
        Duration::from_secs(10),
    )
    .await;
    let _: Value = eval(&page, "(history.forward(), true)").await;
    wait_until(
        &page,
        &format!(
            "{} && {}.classList.contains('selected')",
            row(DEEP_FAILURE),
            row(DEEP_FAILURE)
        ),
        Duration::from_secs(10),
    )
    .await;
    // Back twice more: the flow's runs, then the flows.
    let _: Value = eval(&page, "(history.go(-2), true)").await;
    wait_until(
        &page,
        "location.search === '?flow=big-run' && !document.getElementById('runs').hidden",
        Duration::from_secs(10),
    )
    .await;
    let _: Value = eval(&page, "(history.back(), true)").await;
    wait_until(
        &page,
        "location.search === '' && !document.getElementById('flows').hidden",
        Duration::from_secs(10),
    )
    .await;
    no_errors(&page).await;
    chromium.close_with_nothing_sent_outside().await;
}

async fn large_fan_out_loads_in_windows(backend: Backend) {
    let api = Api::new(backend).await;
    seed(&api).await;
    let addr = api.serve().await;
    let chromium = Chromium::launch().await;
    let page = chromium
        .open(&format!("http://{addr}/explorer?run=R"))
        .await;
    wait_until(&page, &row("R.c0005"), Duration::from_secs(20)).await;
    let laid_out = "parseFloat(document.getElementById('tree-spacer').style.height) / 26";
    // Scrolling to the bottom, again and again: each time the window after
    // the last loaded child comes in, without a click.
    let mut most_in_dom = 0;
    let mut steps = 0;
    loop {
        let rows: f64 = eval(&page, laid_out).await;
        let in_dom: usize = eval(&page, "document.querySelectorAll('#tree .row').length").await;
        most_in_dom = most_in_dom.max(in_dom);
        let done: bool = eval(&page, &format!("Boolean({})", row("R.c4999"))).await;
        if done {
            break;
        }
        steps += 1;
        assert!(steps <= 60, "still not at the end after {steps} scrolls");
        let _: Value = eval(
            &page,
            "(document.getElementById('tree').scrollTop = 1e9, true)",
        )
        .await;
        wait_until(
            &page,
            &format!("{laid_out} > {rows} || {}", row("R.c4999")),
            Duration::from_secs(10),
        )
        .await;
    }
    let rows: f64 = eval(&page, laid_out).await;
    assert_eq!(
        rows,
        (1 + CHILDREN) as f64,
        "every child loaded, no gap left"
    );
    assert!(most_in_dom <= 200, "at most {most_in_dom} rows in the DOM");
    eprintln!("explorer ({backend:?}): 5,000 children scrolled in {steps} windows, at most {most_in_dom} rows in the DOM");

    // "⇥ end" on a fresh page: the last children at once, then scrolling
    // up loads the window above them.
    let page = chromium
        .open(&format!("http://{addr}/explorer?run=R"))
        .await;
    let end = format!("{}.querySelector('.end')", row("R"));
    wait_until(&page, &end, Duration::from_secs(20)).await;
    click(&page, &end).await;
    wait_until(&page, &row("R.c4999"), Duration::from_secs(10)).await;
    // Rows now: R, the first 100 children, the gap, the last 100. With the
    // gap near the top of the tree, the window above the last ones loads
    // (backwards) and the rows below the gap stay where they were.
    let _: Value = eval(
        &page,
        "(document.getElementById('tree').scrollTop = 99 * 26, true)",
    )
    .await;
    wait_until(&page, &row("R.c4899"), Duration::from_secs(10)).await;
    let loaded: usize = eval(&page, "window.explorer.tree.nodes.get('R').children.length").await;
    assert_eq!(loaded, 300, "first, last and the window before the last");
    no_errors(&page).await;
    chromium.close_with_nothing_sent_outside().await;
}

crate::both_backends!(flows_find_reveal_and_links, large_fan_out_loads_in_windows);
