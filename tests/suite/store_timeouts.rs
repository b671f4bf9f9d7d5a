//! Flow timeouts, on both backends: a run not finished its root's
//! `flowTimeoutMs` after the root's start (or due time) is cancelled with
//! reason "flow timeout"; the run's controls are checked at create. The
//! deadline timer is called with the time it is to act at, except in the one
//! test that proves the timer acts by itself (a bounded wait for it).

use std::time::{Duration, Instant};

use execstore::store::{
    now, CreateExecution, ExecutionStatus, ExecutionStore, JanitorSettings, Scope, StatusUpdate,
    StoreError,
};
use serde_json::{json, Value};

use crate::fixtures::input;
use crate::harness::{fresh, Backend};

fn timed(id: &str, parent: Option<&str>, execution: Value) -> CreateExecution {
    let mut input = input(id, parent);
    input.options = Some(json!({ "execution": execution }));
    input
}

async fn status(store: &ExecutionStore, id: &str) -> (ExecutionStatus, Option<String>) {
    let e = store.reads().get(id, &Scope::All).await.unwrap().unwrap();
    (e.status, e.error_message)
}

fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

/// Past its deadline the whole run is cancelled (the holder of one of its
/// executions told `CANCELLED`); before it, and for runs without a timeout
/// or finished, nothing happens.
async fn a_run_past_its_timeout_is_cancelled(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let runs = store.runs();
    let root = runs
        .create(
            timed("run", None, json!({ "flowTimeoutMs": 60_000 })),
            &Scope::All,
        )
        .await
        .unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| input(&format!("run.{i}"), Some("run")))
        .collect();
    runs.create_many(children, &Scope::All).await.unwrap();
    runs.create(input("untimed", None), &Scope::All)
        .await
        .unwrap();
    runs.create(
        timed("finished", None, json!({ "flowTimeoutMs": 1 })),
        &Scope::All,
    )
    .await
    .unwrap();
    runs.update_execution_status(
        StatusUpdate::new("finished", ExecutionStatus::Completed),
        &Scope::All,
    )
    .await
    .unwrap();
    let held = store
        .queue()
        .claim_execution("run.0", "holder", 600_000)
        .await
        .unwrap();
    assert!(held.acquired());

    let deadline = root.created_at + ms(60_000);
    assert_eq!(runs.next_deadline().await.unwrap(), Some(deadline));
    assert_eq!(runs.time_out_runs(deadline - ms(1)).await.unwrap(), 0);
    assert_eq!(status(&store, "run").await.0, ExecutionStatus::Created);

    assert_eq!(runs.time_out_runs(deadline).await.unwrap(), 1);
    for id in ["run", "run.0", "run.1", "run.2"] {
        assert_eq!(
            status(&store, id).await,
            (ExecutionStatus::Stopped, Some("flow timeout".into())),
            "{id}"
        );
    }
    assert_eq!(status(&store, "untimed").await.0, ExecutionStatus::Created);
    assert_eq!(
        status(&store, "finished").await.0,
        ExecutionStatus::Completed
    );
    let beat = store
        .queue()
        .extend_many("holder", vec!["run.0".into()], 60_000)
        .await
        .unwrap();
    assert_eq!(beat[0].code, Some("CANCELLED"));
    // Timed out once: nothing is left for the timer.
    assert_eq!(runs.next_deadline().await.unwrap(), None);
    assert_eq!(
        runs.time_out_runs(deadline + ms(3_600_000)).await.unwrap(),
        0
    );
}

/// The timeout counts from the root's start when it started after its
/// creation (the timer moves the deadline there), from its `runAt` when it
/// is scheduled, and again from a retry of the run.
async fn the_timeout_counts_from_the_start(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let runs = store.runs();
    let root = runs
        .create(
            timed("late", None, json!({ "flowTimeoutMs": 60_000 })),
            &Scope::All,
        )
        .await
        .unwrap();
    let started = root.created_at + ms(1);
    let mut running = StatusUpdate::new("late", ExecutionStatus::Running);
    running.started_at = Some(started);
    runs.update_execution_status(running, &Scope::All)
        .await
        .unwrap();
    let created_deadline = root.created_at + ms(60_000);
    assert_eq!(runs.time_out_runs(created_deadline).await.unwrap(), 0);
    assert_eq!(status(&store, "late").await.0, ExecutionStatus::Running);
    assert_eq!(
        runs.next_deadline().await.unwrap(),
        Some(started + ms(60_000)),
        "moved to the start"
    );
    assert_eq!(runs.time_out_runs(started + ms(59_999)).await.unwrap(), 0);
    assert_eq!(runs.time_out_runs(started + ms(60_000)).await.unwrap(), 1);
    assert_eq!(status(&store, "late").await.0, ExecutionStatus::Stopped);

    // A retry of the timed-out run counts again from the retry (its due
    // time), later than the start (the clock is read after this pause).
    tokio::time::sleep(Duration::from_millis(10)).await;
    let n = runs
        .retry_executions("late", &[ExecutionStatus::Stopped], &Scope::All)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let retried = store
        .reads()
        .get("late", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    let retried_at = retried.run_at.unwrap();
    assert!(retried_at > started);
    assert_eq!(runs.time_out_runs(now()).await.unwrap(), 0);
    assert_eq!(
        runs.next_deadline().await.unwrap(),
        Some(retried_at + ms(60_000)),
        "counted from the retry"
    );
    assert_eq!(status(&store, "late").await.0, ExecutionStatus::Created);

    // Scheduled for an hour from now: its deadline is an hour and a minute.
    let due = now() + ms(3_600_000);
    let mut scheduled = timed("scheduled", None, json!({ "flowTimeoutMs": 60_000 }));
    scheduled.run_at = Some(due);
    runs.create(scheduled, &Scope::All).await.unwrap();
    assert_eq!(
        runs.time_out_runs(due + ms(59_000)).await.unwrap(),
        1,
        "only `late`"
    );
    assert_eq!(
        status(&store, "scheduled").await.0,
        ExecutionStatus::Created
    );
    assert_eq!(runs.time_out_runs(due + ms(60_000)).await.unwrap(), 1);
    assert_eq!(
        status(&store, "scheduled").await.0,
        ExecutionStatus::Stopped
    );
}

/// An upsert of an existing root that sets a flow timeout has the timer
/// look at once and count it from the root's creation; one that drops the
/// timeout drops the deadline.
async fn upserts_set_and_drop_the_timeout(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let runs = store.runs();
    let root = runs.create(input("up", None), &Scope::All).await.unwrap();
    assert_eq!(runs.next_deadline().await.unwrap(), None);
    runs.create(
        timed("up", None, json!({ "flowTimeoutMs": 60_000 })),
        &Scope::All,
    )
    .await
    .unwrap();
    let look = runs.next_deadline().await.unwrap().expect("looked at");
    assert!(look <= now());
    assert_eq!(runs.time_out_runs(now()).await.unwrap(), 0);
    assert_eq!(
        runs.next_deadline().await.unwrap(),
        Some(root.created_at + ms(60_000))
    );
    runs.create(input("up", None), &Scope::All).await.unwrap();
    assert_eq!(runs.next_deadline().await.unwrap(), None);
    assert_eq!(status(&store, "up").await.0, ExecutionStatus::Created);
}

/// A flow timeout on a child, or on a root in a batch, is read only on the
/// root; wrong controls refuse the whole request and write nothing.
async fn the_controls_are_checked_at_create(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let runs = store.runs();
    for bad in [
        json!(5),
        json!({ "maxConcurrency": 0 }),
        json!({ "maxConcurrency": "2" }),
        json!({ "flowTimeoutMs": 1.5 }),
        json!({ "nodeTimeoutMs": -3 }),
    ] {
        let inputs = vec![input("ok", None), timed("bad", Some("ok"), bad.clone())];
        let err = runs.create_many(inputs, &Scope::All).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidInput {
                    field: "options.execution",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert!(store
            .reads()
            .get("ok", &Scope::All)
            .await
            .unwrap()
            .is_none());
    }
    runs.create(
        timed(
            "root",
            None,
            json!({ "maxConcurrency": 2, "nodeTimeoutMs": 1000, "note": "kept" }),
        ),
        &Scope::All,
    )
    .await
    .unwrap();
    // A child's flowTimeoutMs times nothing out: only the root's counts.
    runs.create(
        timed("child", Some("root"), json!({ "flowTimeoutMs": 1 })),
        &Scope::All,
    )
    .await
    .unwrap();
    assert_eq!(runs.next_deadline().await.unwrap(), None);
    let stored = store
        .reads()
        .get("root", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.options.unwrap()["execution"]["note"], "kept");
}

/// The janitor's deadline timer acts by itself, within a second of the
/// deadline (the test waits for it, bounded).
async fn the_timer_acts_by_itself(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let timer = store.janitor().spawn(JanitorSettings {
        interval: Duration::from_secs(3600),
        event_retention: Duration::from_secs(3600),
        run_retention: None,
    });
    let root = store
        .runs()
        .create(
            timed("soon", None, json!({ "flowTimeoutMs": 300 })),
            &Scope::All,
        )
        .await
        .unwrap();
    let deadline = root.created_at + ms(300);
    let waited = Instant::now();
    while status(&store, "soon").await.0 != ExecutionStatus::Stopped {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "never timed out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = store
        .reads()
        .get("soon", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    let late = stopped.completed_at.unwrap() - deadline;
    assert!(late >= chrono::Duration::zero(), "not before its deadline");
    assert!(late < ms(1_000), "{late} after its deadline");
    timer.abort();
}

/// A database made before flow timeouts migrates: its unfinished roots that
/// set one are looked at by the timer at once (the one past its timeout is
/// cancelled), a finished one and one without a timeout are not.
async fn an_old_database_migrates(backend: Backend) {
    let at = "'2026-01-01T00:00:00+00:00'";
    let inserts: Vec<String> = [
        ("timed", "running", r#"{"execution":{"flowTimeoutMs":60000}}"#),
        ("done", "completed", r#"{"execution":{"flowTimeoutMs":60000}}"#),
        ("plain", "created", r#"{"execution":{"maxConcurrency":2}}"#),
    ]
    .iter()
    .map(|(id, status, options)| {
        format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, \
             created_at, updated_at, failure_count, options) \
             VALUES ('{id}', 'f', 'o', '{id}', '{status}', 0, {at}, {at}, 0, '{options}')"
        )
    })
    .collect();
    let (store, _dir) = crate::harness::old_database(backend, 13, &inserts).await;
    let looked_at = store.runs().next_deadline().await.unwrap().unwrap();
    assert_eq!(looked_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    assert_eq!(store.runs().time_out_runs(now()).await.unwrap(), 1);
    assert_eq!(
        status(&store, "timed").await,
        (ExecutionStatus::Stopped, Some("flow timeout".into()))
    );
    assert_eq!(status(&store, "done").await.0, ExecutionStatus::Completed);
    assert_eq!(status(&store, "plain").await.0, ExecutionStatus::Created);
    assert_eq!(store.runs().next_deadline().await.unwrap(), None);
}

crate::both_backends!(
    a_run_past_its_timeout_is_cancelled,
    the_timeout_counts_from_the_start,
    the_controls_are_checked_at_create,
    upserts_set_and_drop_the_timeout,
    the_timer_acts_by_itself,
    an_old_database_migrates,
);
