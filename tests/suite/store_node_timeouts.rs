//! Node timeouts, on both backends: an execution of a run whose root sets
//! `options.execution.nodeTimeoutMs` is held at most that long after its
//! claim's start (claims, pulls and heartbeats are capped there), and the
//! deadline timer takes it back as a retry with reason "node timeout",
//! counted against its attempts. The timer is called with the time it is to
//! act at, except in the one test that proves it acts by itself.

use std::time::{Duration, Instant};

use execstore::store::{
    now, CreateExecution, ExecutionStatus, ExecutionStore, JanitorSettings, Scope, StoreError,
    NODE_TIMEOUT,
};
use serde_json::json;

use crate::fixtures::input;
use crate::harness::{fresh, Backend};

/// A root whose run holds each execution at most `ms`, and its children.
async fn run_of(store: &ExecutionStore, root: &str, ms: i64, children: &[(&str, Option<i64>)]) {
    let root_input = CreateExecution {
        options: Some(json!({ "execution": { "nodeTimeoutMs": ms } })),
        ..input(root, None)
    };
    store.runs().create(root_input, &Scope::All).await.unwrap();
    let children = children
        .iter()
        .map(|(id, attempts)| CreateExecution {
            options: attempts.map(|n| json!({ "retry": { "maxAttempts": n, "backoffMs": 1 } })),
            ..input(id, Some(root))
        })
        .collect();
    store
        .runs()
        .create_many(children, &Scope::All)
        .await
        .unwrap();
}

fn near(a: chrono::Duration, ms: i64) -> bool {
    (a - chrono::Duration::milliseconds(ms))
        .num_microseconds()
        .unwrap()
        .abs()
        < 2_000
}

/// A claim by id, a pull and a heartbeat of a run with `nodeTimeoutMs`
/// never reach past the claim's start plus the timeout; a re-claim by the
/// holder keeps that deadline; a run without one is not capped.
async fn claims_are_capped(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 5_000, &[("run.a", None), ("run.b", None)]).await;
    let q = store.queue();
    let by_id = q.claim_execution("run.a", "w", 600_000).await.unwrap();
    let claim = by_id.claim.unwrap();
    assert!(
        near(claim.expires_at - claim.claimed_at, 5_000),
        "{claim:?}"
    );
    let again = q.claim_execution("run.a", "w", 600_000).await.unwrap();
    assert_eq!(again.claim.unwrap().expires_at, claim.expires_at, "kept");
    let beat = q
        .extend_many("w", vec!["run.a".into()], 600_000)
        .await
        .unwrap();
    assert_eq!(
        beat[0].expires_at,
        Some(claim.expires_at),
        "a heartbeat is capped"
    );
    // The root, its run's coordinator, is not capped.
    let root = q
        .claim_execution("run", "w", 600_000)
        .await
        .unwrap()
        .claim
        .unwrap();
    assert!(near(root.expires_at - root.claimed_at, 600_000));
    let pulled = q
        .claim_next_executions("v", 600_000, None, 1)
        .await
        .unwrap();
    let b = pulled.iter().find(|e| e.id == "run.b").unwrap();
    let lease = b.lease_expires_at.unwrap() - b.processing_started_at.unwrap();
    assert!(near(lease, 5_000), "{lease}");
    // Without a node timeout, the lease asked for.
    store
        .runs()
        .create(input("free", None), &Scope::All)
        .await
        .unwrap();
    let free = q
        .claim_execution("free", "w", 600_000)
        .await
        .unwrap()
        .claim
        .unwrap();
    assert!(near(free.expires_at - free.claimed_at, 600_000));
    let beat = q
        .extend_many("w", vec!["free".into()], 900_000)
        .await
        .unwrap();
    let left = beat[0].expires_at.unwrap() - now();
    assert!(left > chrono::Duration::seconds(899), "{left}");
}

/// Past its node deadline an execution is taken back from its holder as a
/// retry ("node timeout", its failure counted, due again after its
/// backoff); the holder's heartbeat and finish are refused; one whose
/// attempts are spent FAILS. Released or finished in time, nothing happens.
async fn a_node_past_its_timeout_is_a_retry(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(
        &store,
        "run",
        1_000,
        &[
            ("run.a", Some(5)),
            ("run.b", Some(1)),
            ("run.c", None),
            ("run.d", None),
        ],
    )
    .await;
    let q = store.queue();
    for id in ["run.a", "run.b", "run.c", "run.d"] {
        assert!(q
            .claim_execution(id, "w", 600_000)
            .await
            .unwrap()
            .acquired());
    }
    // In time: c finished, d released.
    q.finish_execution(crate::fixtures::finish(
        "run.c",
        "w",
        ExecutionStatus::Completed,
    ))
    .await
    .unwrap();
    assert!(q.release_execution("run.d", "w").await.unwrap());
    assert_eq!(q.time_out_nodes(now()).await.unwrap(), 0, "nothing due yet");

    let later = now() + chrono::Duration::seconds(2);
    assert_eq!(q.time_out_nodes(later).await.unwrap(), 2);
    let a = crate::fixtures::stored(&store, "run.a").await;
    assert_eq!(a.status, ExecutionStatus::Created);
    assert_eq!(a.failure_count, 1);
    assert_eq!(a.last_failure_reason.as_deref(), Some(NODE_TIMEOUT));
    assert_eq!(a.processing_worker_id, None);
    let b = crate::fixtures::stored(&store, "run.b").await;
    assert_eq!(b.status, ExecutionStatus::Failed, "its one attempt spent");
    // The holder learns it: its heartbeat and its finish are refused.
    assert!(!q.extend_claim("run.a", "w", 60_000).await.unwrap());
    let late = q
        .finish_execution(crate::fixtures::finish(
            "run.a",
            "w",
            ExecutionStatus::Completed,
        ))
        .await
        .unwrap_err();
    assert!(matches!(late, StoreError::Conflict(_)), "{late:?}");
    // Taken back once: the timer finds nothing more.
    assert_eq!(q.time_out_nodes(later).await.unwrap(), 0);
    let c = crate::fixtures::stored(&store, "run.c").await;
    assert_eq!((c.status, c.failure_count), (ExecutionStatus::Completed, 0));
    let d = crate::fixtures::stored(&store, "run.d").await;
    assert_eq!((d.status, d.failure_count), (ExecutionStatus::Created, 0));
}

/// The janitor's deadline timer takes a held execution back by itself,
/// within a second of its node deadline.
async fn the_timer_acts_by_itself(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let timer = store.janitor().spawn(JanitorSettings {
        interval: Duration::from_secs(3600),
        event_retention: Duration::from_secs(3600),
        run_retention: None,
    });
    run_of(&store, "run", 300, &[("run.a", None)]).await;
    let claim = store
        .queue()
        .claim_execution("run.a", "w", 600_000)
        .await
        .unwrap()
        .claim
        .unwrap();
    let waited = Instant::now();
    let taken = loop {
        let a = crate::fixtures::stored(&store, "run.a").await;
        if a.failure_count == 1 {
            break a;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "never taken back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let late = taken.last_failure_at.unwrap() - claim.expires_at;
    assert!(late >= chrono::Duration::zero(), "not before its deadline");
    assert!(
        late < chrono::Duration::seconds(1),
        "{late} after its deadline"
    );
    timer.abort();
}

/// Past its node deadline and before the timer has come, nobody claims the
/// execution (its holder included): a new claim would start it again
/// without counting the timeout. The timer then takes it back.
async fn no_claim_escapes_the_timeout(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    run_of(&store, "run", 50, &[("run.a", None)]).await;
    let q = store.queue();
    let claim = q
        .claim_execution("run.a", "w", 600_000)
        .await
        .unwrap()
        .claim
        .unwrap();
    let wait = (claim.expires_at - now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    for worker in ["w", "v"] {
        let again = q.claim_execution("run.a", worker, 600_000).await.unwrap();
        assert!(!again.acquired(), "{worker} claimed it past its deadline");
    }
    let pulled = q
        .claim_next_executions("v", 600_000, None, 10)
        .await
        .unwrap();
    assert!(
        pulled.iter().all(|e| e.id != "run.a"),
        "a pull handed it out"
    );
    assert_eq!(q.time_out_nodes(now()).await.unwrap(), 1);
    let a = crate::fixtures::stored(&store, "run.a").await;
    assert_eq!(
        (a.failure_count, a.last_failure_reason.as_deref()),
        (1, Some(NODE_TIMEOUT))
    );
}

crate::both_backends!(
    no_claim_escapes_the_timeout,
    claims_are_capped,
    a_node_past_its_timeout_is_a_retry,
    the_timer_acts_by_itself,
);
