//! Runs under control: cancel (under concurrent pulls), pause and resume,
//! putting a run's failed executions back, on both backends.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use execstore::store::{
    ClaimRejection, CreateExecution, EventKind, ExecutionStatus, ExecutionStore, Scope,
    StatusUpdate, StoreError,
};

use crate::fixtures::{finish, input, OWNER};
use crate::harness::{fresh, Backend};

/// A run: `root` and `n` children (created in one batch).
async fn run_of(store: &ExecutionStore, root: &str, n: usize) {
    store
        .runs()
        .create(input(root, None), &Scope::All)
        .await
        .unwrap();
    let children: Vec<CreateExecution> = (0..n)
        .map(|i| input(&format!("{root}.{i}"), Some(root)))
        .collect();
    store
        .runs()
        .create_many(children, &Scope::All)
        .await
        .unwrap();
}

async fn ids(store: &ExecutionStore, worker: &str, limit: i64) -> Vec<String> {
    store
        .queue()
        .claim_next_executions(worker, 60_000, None, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Cancel under 8 concurrent pullers: nothing of the run is handed out by a
/// pull that starts after the cancel's answer; a worker holding one learns
/// it at its heartbeat (`CANCELLED`) and its finish is refused.
async fn cancel_under_concurrent_pulls(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 3_000).await;
    // One held before the cancel, by a worker that heartbeats after it.
    let held = ids(&store, "holder", 1).await;
    assert_eq!(held, ["run"]);

    let cancelled_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let late: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let pullers: Vec<_> = (0..8)
        .map(|w| {
            let (store, cancelled_at, late, stop) = (
                store.clone(),
                cancelled_at.clone(),
                late.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                for _ in 0..10_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let started = Instant::now();
                    let got = ids(&store, &format!("w{w}"), 2).await;
                    let after_cancel = cancelled_at.lock().unwrap().is_some_and(|at| started > at);
                    if after_cancel {
                        late.lock()
                            .unwrap()
                            .extend(got.into_iter().filter(|id| id.starts_with("run")));
                    }
                }
            })
        })
        .collect();
    // Let the pullers take some of the run first.
    let mut seen = 0;
    while seen < 20 {
        seen = store
            .reads()
            .get_active_claims(&Scope::All)
            .await
            .unwrap()
            .len();
        tokio::task::yield_now().await;
    }
    let n = store
        .runs()
        .cancel("run", Some("operator said so"), &Scope::All)
        .await
        .unwrap();
    *cancelled_at.lock().unwrap() = Some(Instant::now());
    // Pullers keep pulling for a while after the answer (bounded).
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for p in pullers {
        p.await.unwrap();
    }
    // Most of the run was still queued when it was cancelled.
    assert!(n > 1_000 && n <= 3_001, "{n}");
    assert!(
        late.lock().unwrap().is_empty(),
        "handed out after the cancel: {:?}",
        late.lock().unwrap()
    );
    let root = store
        .reads()
        .get("run", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(root.status, ExecutionStatus::Stopped);
    assert_eq!(root.error_message.as_deref(), Some("operator said so"));
    assert!(root.completed_at.is_some());
    // The holder's heartbeat: refused, and says why; its finish too.
    let beat = store
        .queue()
        .extend_many("holder", vec!["run".into()], 60_000)
        .await
        .unwrap();
    assert_eq!(
        (beat[0].expires_at, beat[0].code),
        (None, Some("CANCELLED"))
    );
    assert!(!store
        .queue()
        .extend_claim("run", "holder", 60_000)
        .await
        .unwrap());
    let err = store
        .queue()
        .finish_execution(finish("run", "holder", ExecutionStatus::Completed))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Nothing of it is claimable by id either; other work still is.
    let claim = store
        .queue()
        .claim_execution("run.2999", "w", 60_000)
        .await
        .unwrap();
    assert!(!claim.acquired());
    store
        .runs()
        .create(input("other", None), &Scope::All)
        .await
        .unwrap();
    assert_eq!(ids(&store, "w", 10).await, ["other"]);
    // A second cancel changes nothing.
    assert_eq!(
        store.runs().cancel("run", None, &Scope::All).await.unwrap(),
        0
    );
}

/// Pause keeps a subtree's queued executions out of the queue (held ones
/// finish normally; one created under it is created PAUSED); resume puts
/// them back in their old order.
async fn pause_and_resume_keep_order(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    store
        .runs()
        .create(input("run", None), &Scope::All)
        .await
        .unwrap();
    // `run` itself is held by a worker, and stays held.
    assert_eq!(ids(&store, "held", 1).await, ["run"]);
    // `z` before `a`: the old order (due time, then id) is not the ids'.
    for (id, priority) in [("z", 0), ("b", 5), ("a", 0), ("d", -3)] {
        let mut i = input(id, Some("run"));
        i.priority = Some(priority);
        store.runs().create(i, &Scope::All).await.unwrap();
    }
    let changed = store.runs().pause("run", &Scope::All).await.unwrap();
    assert_eq!(changed, 5, "marked paused: all; the four queued PAUSED");
    assert!(ids(&store, "w", 10).await.is_empty(), "nothing handed out");
    let b = store.reads().get("b", &Scope::All).await.unwrap().unwrap();
    assert_eq!((b.status, b.paused), (ExecutionStatus::Paused, true));
    let run = store
        .reads()
        .get("run", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (run.status, run.paused),
        (ExecutionStatus::Created, true),
        "held: runs on"
    );
    let child = store
        .runs()
        .create(input("e", Some("b")), &Scope::All)
        .await
        .unwrap();
    assert_eq!(
        (child.status, child.paused),
        (ExecutionStatus::Paused, true)
    );
    store
        .queue()
        .finish_execution(finish("run", "held", ExecutionStatus::Completed))
        .await
        .unwrap();
    let changed = store.runs().resume("run", &Scope::All).await.unwrap();
    assert_eq!(changed, 6);
    assert_eq!(ids(&store, "w", 10).await, ["b", "z", "a", "e", "d"]);
    let a = store.reads().get("a", &Scope::All).await.unwrap().unwrap();
    assert!(!a.paused);
}

/// Under a pause nothing waiting PAUSED is claimable by id either, and one
/// whose holder died (its lease lapsed) or released it waits PAUSED too,
/// instead of going back to the queue.
async fn paused_work_stays_out_of_the_queue(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 3).await;
    assert_eq!(ids(&store, "dies", 1).await, ["run"]);
    assert_eq!(ids(&store, "lets-go", 1).await, ["run.0"]);
    assert_eq!(store.runs().pause("run", &Scope::All).await.unwrap(), 4);
    let claim = store
        .queue()
        .claim_execution("run.1", "w", 60_000)
        .await
        .unwrap();
    assert_eq!(claim.rejection, Some(ClaimRejection::Paused));
    // The holder of `run` dies; the one of `run.0` lets it go.
    crate::fixtures::expire_lease(&t.db, "run").await;
    assert!(store
        .queue()
        .release_execution("run.0", "lets-go")
        .await
        .unwrap());
    assert!(ids(&store, "w", 10).await.is_empty(), "nothing handed out");
    for id in ["run", "run.0", "run.1", "run.2"] {
        let e = store.reads().get(id, &Scope::All).await.unwrap().unwrap();
        assert_eq!(
            (e.status, e.paused),
            (ExecutionStatus::Paused, true),
            "{id}"
        );
    }
    assert_eq!(store.runs().resume("run", &Scope::All).await.unwrap(), 4);
    assert_eq!(
        ids(&store, "w", 10).await,
        ["run", "run.0", "run.1", "run.2"]
    );
}

/// Finishes racing a cancel of their run: every execution ends either
/// finished by its holder (and not counted by the cancel) or STOPPED by the
/// cancel (and its finish refused), never both, never put back; the cancel
/// releases the claims it stops, so a retry of the stopped ones hands them
/// to a new worker at once.
async fn finishes_racing_a_cancel(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 199).await;
    let mut held = ids(&store, "w", 100).await;
    held.extend(ids(&store, "w", 100).await);
    assert_eq!(held.len(), 200);
    let finishers: Vec<_> = held
        .chunks(10)
        .map(|chunk| {
            let (store, chunk) = (store.clone(), chunk.to_vec());
            tokio::spawn(async move {
                let items = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, id)| {
                        // Half finish, half retry.
                        let status = match i % 2 {
                            0 => ExecutionStatus::Completed,
                            _ => ExecutionStatus::Created,
                        };
                        let mut f = finish(id, "w", status);
                        f.retry_in_ms = Some(0);
                        f
                    })
                    .collect();
                store.queue().finish_many(items).await.unwrap()
            })
        })
        .collect();
    let cancel = {
        let store = store.clone();
        tokio::spawn(async move { store.runs().cancel("run", None, &Scope::All).await.unwrap() })
    };
    // (id, finished as a retry?) of the finishes that went through.
    let mut accepted = std::collections::HashMap::new();
    for f in finishers {
        for outcome in f.await.unwrap() {
            match outcome.refusal {
                None => {
                    let retry = outcome.execution.as_ref().unwrap().failure_count == 1;
                    accepted.insert(outcome.execution_id, retry);
                }
                Some(code) => assert_eq!(code, "CONFLICT", "{}", outcome.execution_id),
            }
        }
    }
    let stopped_by_cancel = cancel.await.unwrap();
    let mut stopped = 0;
    for id in &held {
        let e = store.reads().get(id, &Scope::All).await.unwrap().unwrap();
        // A completion before the cancel stays; a retry before it was
        // stopped by it; a finish after it was refused.
        let expected = match accepted.get(id) {
            Some(false) => ExecutionStatus::Completed,
            Some(true) | None => ExecutionStatus::Stopped,
        };
        assert_eq!(e.status, expected, "{id}: accepted {:?}", accepted.get(id));
        stopped += u64::from(e.status == ExecutionStatus::Stopped);
    }
    assert_eq!(stopped_by_cancel, stopped);
    let claims = store.reads().get_active_claims(&Scope::All).await.unwrap();
    assert!(
        claims.is_empty(),
        "the cancel released its claims: {claims:?}"
    );
    // Put back, the stopped ones go to a new worker at once.
    let n = store
        .runs()
        .retry_executions("run", &[ExecutionStatus::Stopped], &Scope::All)
        .await
        .unwrap();
    assert!(n >= stopped);
    assert_eq!(ids(&store, "new", 100).await.len() as u64, n.min(100));
}

/// The mark holds on every path that would put an execution of a paused
/// subtree back in the queue: recovery setting a running one CREATED, a
/// retry of a failed one, a child created under a finished one, an upsert
/// back to CREATED, and claim by id once its holder's lease lapsed (the
/// holder itself may claim it again while its claim is live).
async fn the_mark_holds_on_every_path(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 4).await;
    assert_eq!(ids(&store, "h", 1).await, ["run"]);
    store
        .runs()
        .update_execution_status(
            StatusUpdate::new("run.0", ExecutionStatus::Running),
            &Scope::All,
        )
        .await
        .unwrap();
    store
        .runs()
        .update_execution_status(
            StatusUpdate::new("run.1", ExecutionStatus::Failed),
            &Scope::All,
        )
        .await
        .unwrap();
    store.runs().pause("run", &Scope::All).await.unwrap();
    let status = |id: &'static str| {
        let store = store.clone();
        async move { store.reads().get(id, &Scope::All).await.unwrap().unwrap() }
    };
    assert!(status("run.1").await.paused, "a finished one is marked too");
    // The holder may claim its own again; nobody else.
    assert!(store
        .queue()
        .claim_execution("run", "h", 60_000)
        .await
        .unwrap()
        .acquired());
    crate::fixtures::expire_lease(&t.db, "run").await;
    let other = store
        .queue()
        .claim_execution("run", "x", 60_000)
        .await
        .unwrap();
    assert_eq!(other.rejection, Some(ClaimRejection::Paused));
    // Recovery puts the running one back.
    let mut back = StatusUpdate::new("run.0", ExecutionStatus::Created);
    back.failure_count = Some(1);
    let e = store
        .runs()
        .update_execution_status(back, &Scope::All)
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Paused);
    // A retry of the failed one, a child under it, an upsert to CREATED.
    store
        .runs()
        .retry_executions("run", &[ExecutionStatus::Failed], &Scope::All)
        .await
        .unwrap();
    assert_eq!(status("run.1").await.status, ExecutionStatus::Paused);
    let child = store
        .runs()
        .create(input("run.1.x", Some("run.1")), &Scope::All)
        .await
        .unwrap();
    assert_eq!(
        (child.status, child.paused),
        (ExecutionStatus::Paused, true)
    );
    let again = store
        .runs()
        .create(input("run.2", Some("run")), &Scope::All)
        .await
        .unwrap();
    assert_eq!(again.status, ExecutionStatus::Paused);
    assert!(ids(&store, "w", 10).await.is_empty(), "nothing handed out");
    store.runs().resume("run", &Scope::All).await.unwrap();
    let mut back = ids(&store, "w", 10).await;
    back.sort();
    assert_eq!(back, ["run", "run.1", "run.1.x", "run.2", "run.3"]);
    // The one recovery put back waits out its retry's backoff, as it would
    // have without the pause.
    let waiting = status("run.0").await;
    assert_eq!(waiting.status, ExecutionStatus::Created);
    assert!(waiting.run_at.unwrap() > execstore::store::now());
}

/// Each execution a control changes is one event, in commit order, showing
/// the row as it is after the change; what a control does not change is not
/// logged.
async fn every_change_is_one_event(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 2).await;
    let start = store.events().cursor().await.unwrap();
    store.runs().pause("run", &Scope::All).await.unwrap();
    store.runs().resume("run", &Scope::All).await.unwrap();
    store
        .runs()
        .cancel("run.0", None, &Scope::All)
        .await
        .unwrap();
    store
        .runs()
        .retry_executions("run", &[ExecutionStatus::Stopped], &Scope::All)
        .await
        .unwrap();
    // The cursor may stand before the run's creation (on PostgreSQL it is
    // the safe point of transactions still in flight): creations skipped.
    let mut events = Box::pin(
        store
            .events()
            .follow("run".into(), &Scope::All, Some(start))
            .filter(|e| std::future::ready(!matches!(e, Ok(e) if e.kind == EventKind::Created))),
    );
    let (mut seen, mut shown) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let event = tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .expect("an event within 60 s")
            .expect("the stream goes on")
            .expect("no error");
        seen.push(event.execution_id.clone());
        shown.push(format!(
            "{:?} {} at {:?}",
            event.kind, event.execution_id, event.position
        ));
    }
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let all = ["run", "run.0", "run.1"].map(String::from).to_vec();
    assert_eq!(sorted(seen[0..3].to_vec()), all, "paused: {shown:?}");
    assert_eq!(sorted(seen[3..6].to_vec()), all, "resumed: {shown:?}");
    assert_eq!(
        seen[6..8],
        ["run.0", "run.0"],
        "cancelled, then put back: {shown:?}"
    );
    // Nothing else was logged.
    let more = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
    assert!(more.is_err(), "no ninth event: {more:?}");
}

/// `retryExecutions` puts a run's failed executions back (completedAt
/// cleared, failureCount kept) in one statement; only finished statuses.
async fn retry_the_failed(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 3).await;
    for (id, status) in [
        ("run.0", ExecutionStatus::Failed),
        ("run.1", ExecutionStatus::Completed),
    ] {
        let mut update = StatusUpdate::new(id, status);
        update.failure_count = Some(2);
        store
            .runs()
            .update_execution_status(update, &Scope::All)
            .await
            .unwrap();
    }
    let before = ids(&store, "w", 10).await;
    assert_eq!(before, ["run", "run.2"]);
    let n = store
        .runs()
        .retry_executions("run", &[ExecutionStatus::Failed], &Scope::All)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let back = store
        .reads()
        .get("run.0", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, ExecutionStatus::Created);
    assert!(back.completed_at.is_none());
    assert_eq!(back.failure_count, 2);
    assert_eq!(ids(&store, "w", 10).await, ["run.0"]);
    let err = store
        .runs()
        .retry_executions("run", &[ExecutionStatus::Created], &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "status",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A user controls only its own runs: another owner's run is not found by
/// its controls (nothing changes).
async fn control_is_owner_scoped(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "mine", 2).await;
    let mine = Scope::Owner(OWNER.into());
    let theirs = Scope::Owner("someone-else".into());
    for refused in [
        store.runs().cancel("mine", None, &theirs).await,
        store.runs().pause("mine", &theirs).await,
        store.runs().resume("mine", &theirs).await,
        store
            .runs()
            .retry_executions("mine", &[ExecutionStatus::Failed], &theirs)
            .await,
        store.runs().cancel("nobody", None, &Scope::All).await,
    ] {
        assert!(
            matches!(refused, Err(StoreError::NotFound { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(store.runs().pause("mine.1", &mine).await.unwrap(), 1);
    assert_eq!(store.runs().cancel("mine", None, &mine).await.unwrap(), 3);
    let stopped: HashSet<ExecutionStatus> = ["mine", "mine.0", "mine.1"]
        .iter()
        .map(|id| async {
            store
                .reads()
                .get(id, &Scope::All)
                .await
                .unwrap()
                .unwrap()
                .status
        })
        .collect::<futures_util::stream::FuturesOrdered<_>>()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    assert_eq!(stopped, [ExecutionStatus::Stopped].into());
}

use futures_util::StreamExt;

crate::both_backends!(
    cancel_under_concurrent_pulls,
    pause_and_resume_keep_order,
    paused_work_stays_out_of_the_queue,
    every_change_is_one_event,
    finishes_racing_a_cancel,
    the_mark_holds_on_every_path,
    retry_the_failed,
    control_is_owner_scoped,
);
