//! Concurrency limits per run (`options.execution.maxConcurrency`) and per
//! key (`setConcurrencyLimit`), on both backends: never exceeded by
//! concurrent workers, a freed slot handed out at once, limits set, changed
//! and removed, and every path that frees a slot (finish, cancel, delete,
//! retry) followed by the next admission.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use execstore::store::{
    ClaimRejection, CreateExecution, ExecutionStatus, ExecutionStore, Scope, StoreError,
};
use serde_json::json;

use crate::fixtures::input;
use crate::harness::{fresh, Backend};

/// A root whose run allows `limit` executions at once.
fn limited_root(id: &str, limit: i64) -> CreateExecution {
    CreateExecution {
        options: Some(json!({ "execution": { "maxConcurrency": limit } })),
        ..input(id, None)
    }
}

fn keyed(id: &str, parent: Option<&str>, key: &str) -> CreateExecution {
    CreateExecution {
        concurrency_key: Some(key.into()),
        ..input(id, parent)
    }
}

async fn create_all(store: &ExecutionStore, inputs: Vec<CreateExecution>) {
    store.runs().create_many(inputs, &Scope::All).await.unwrap();
}

async fn pull(store: &ExecutionStore, worker: &str, limit: i64) -> Vec<String> {
    let mut ids: Vec<String> = store
        .queue()
        .claim_next_executions(worker, 60_000, None, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    ids
}

async fn finish(store: &ExecutionStore, id: &str, worker: &str) {
    store
        .queue()
        .finish_execution(crate::fixtures::finish(
            id,
            worker,
            ExecutionStatus::Completed,
        ))
        .await
        .unwrap();
}

async fn set_limit(store: &ExecutionStore, key: &str, limit: Option<i32>) -> Option<(i32, i64)> {
    store
        .runs()
        .set_concurrency_limit(key, limit)
        .await
        .unwrap()
        .map(|l| (l.limit, l.running))
}

/// 16 workers pulling (with `waitMs`, so they sleep until a freed slot wakes
/// them) over two limited runs whose executions partly share a limited key:
/// no more of a run or of the key is ever held than its limit, seen by the
/// workers themselves (a count raised after a claim's answer, lowered before
/// its finish is sent), by the live claims read while they work, and by the
/// store's own count of the key's slots; and
/// every execution is handed out in the end (every freed slot admitted the
/// next).
async fn sixteen_workers_never_exceed_the_limits(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    assert_eq!(set_limit(&store, "api", Some(2)).await, Some((2, 0)));
    let mut inputs = vec![limited_root("r", 3), limited_root("s", 5)];
    for i in 0..600 {
        let id = format!("r.{i:03}");
        inputs.push(match i % 2 {
            0 => input(&id, Some("r")),
            _ => keyed(&id, Some("r"), "api"),
        });
    }
    for i in 0..400 {
        inputs.push(keyed(&format!("s.{i:03}"), Some("s"), "api"));
    }
    create_all(&store, inputs).await;
    let limits: HashMap<&str, i64> = [("r", 3), ("s", 5), ("api", 2)].into();

    #[derive(Default)]
    struct Seen {
        now: HashMap<String, i64>,
        most: HashMap<String, i64>,
        claims: usize,
        ids: HashSet<String>,
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let groups = |id: &str| -> Vec<String> {
        let mut g = Vec::new();
        if let Some(run) = id.split('.').next().filter(|_| id.contains('.')) {
            g.push(run.to_owned());
        }
        let n: usize = id.rsplit('.').next().unwrap().parse().unwrap_or(0);
        if id.starts_with("s.") || (id.starts_with("r.") && n % 2 == 1) {
            g.push("api".to_owned());
        }
        g
    };
    let total = 1_002;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (store, seen, stop) = (store.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let worker = format!("w{w}");
                for _ in 0..5_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let got = store
                        .queue()
                        .claim_next_executions_waiting(
                            &worker,
                            60_000,
                            None,
                            3,
                            Duration::from_millis(200),
                        )
                        .await
                        .unwrap();
                    {
                        let mut s = seen.lock().unwrap();
                        for e in &got {
                            s.claims += 1;
                            assert!(s.ids.insert(e.id.clone()), "{} handed out twice", e.id);
                            for g in groups(&e.id) {
                                let n = s.now.entry(g.clone()).or_default();
                                *n += 1;
                                let n = *n;
                                let most = s.most.entry(g).or_default();
                                *most = (*most).max(n);
                            }
                        }
                    }
                    tokio::task::yield_now().await;
                    for e in got {
                        {
                            let mut s = seen.lock().unwrap();
                            for g in groups(&e.id) {
                                *s.now.get_mut(&g).unwrap() -= 1;
                            }
                        }
                        finish(&store, &e.id, &worker).await;
                    }
                    if seen.lock().unwrap().ids.len() == total {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    // The store's own count, read while the workers run (bounded).
    let mut most_counted = 0;
    for _ in 0..2_000 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let counted = store.runs().concurrency_limits().await.unwrap();
        assert_eq!(counted.len(), 1);
        most_counted = most_counted.max(counted[0].running);
        assert!(counted[0].running <= 2, "the key's count: {counted:?}");
        // And the live claims themselves (the claims table, which the
        // slots' bookkeeping does not read): never over a limit.
        let mut held: HashMap<String, i64> = HashMap::new();
        for claim in store.reads().get_active_claims(&Scope::All).await.unwrap() {
            for g in groups(&claim.execution_id) {
                *held.entry(g).or_default() += 1;
            }
        }
        for (group, n) in &held {
            let limit = limits[group.as_str()];
            assert!(
                *n <= limit,
                "{n} live claims of {group}, over its limit {limit}"
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    let s = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(s.ids.len(), total, "every execution handed out");
    assert_eq!(s.claims, total);
    for (group, most) in &s.most {
        let limit = limits[group.as_str()];
        assert!(
            *most <= limit,
            "{group} held {most} at once, over its limit {limit}"
        );
    }
    assert_eq!(s.most["api"], 2, "the key's slots were used: {:?}", s.most);
    assert!(most_counted >= 1);
    let after = store.runs().concurrency_limits().await.unwrap();
    assert_eq!(after[0].running, 0, "every slot free once all finished");
}

/// A run at its limit: its other executions are out of the queue (a pull
/// gets none; a claim by id is refused with CONCURRENCY_LIMIT); a finish
/// frees the slot and the next by hand-out order is claimable at once, and
/// a worker waiting for work is woken with it. A release or a lapsed claim
/// keeps the slot (the execution is back in the queue, still admitted); a
/// cancel and a delete free it.
async fn a_freed_slot_hands_out_the_next_at_once(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let mut inputs = vec![limited_root("run", 1)];
    for (i, priority) in [(0, 0), (1, 5), (2, 0), (3, 9), (4, 0)] {
        inputs.push(CreateExecution {
            priority: Some(priority),
            ..input(&format!("run.{i}"), Some("run"))
        });
    }
    create_all(&store, inputs).await;
    // The root is its run's coordinator: not limited by its own run.
    assert_eq!(pull(&store, "a", 10).await, ["run", "run.3"]);
    assert!(pull(&store, "b", 10).await.is_empty());
    let refused = store
        .queue()
        .claim_execution("run.1", "b", 60_000)
        .await
        .unwrap();
    assert_eq!(refused.rejection, Some(ClaimRejection::ConcurrencyLimit));
    let shown = crate::fixtures::stored(&store, "run.1").await;
    assert_eq!(shown.status, ExecutionStatus::Created);
    assert_eq!(shown.waiting, 1);

    // Released: back in the queue, still holding the run's slot.
    assert!(store.queue().release_execution("run.3", "a").await.unwrap());
    assert_eq!(pull(&store, "b", 10).await, ["run.3"]);
    finish(&store, "run.3", "b").await;
    // The next by priority, at once.
    assert_eq!(pull(&store, "b", 10).await, ["run.1"]);

    // A worker waiting for work is woken by the slot a finish frees.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .queue()
                .claim_next_executions_waiting("c", 60_000, None, 10, Duration::from_secs(20))
                .await
                .unwrap()
        })
    };
    // (The waiter has found nothing and sleeps, or is about to: either way
    // the finish's wake-up reaches it, since it marks the signal seen
    // before each attempt.)
    tokio::task::yield_now().await;
    finish(&store, "run.1", "b").await;
    let woken: Vec<String> = waiter.await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(woken, ["run.0"]);

    // A cancel frees the slot of what it stops.
    let n = store
        .runs()
        .cancel("run.0", None, &Scope::All)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(pull(&store, "b", 10).await, ["run.2"]);
    // So does a delete.
    assert!(store.runs().delete("run.2", &Scope::All).await.unwrap());
    assert_eq!(pull(&store, "b", 10).await, ["run.4"]);
}

/// A key's limit set over executions made while it had none (the held one
/// counts, the queued ones wait), raised, lowered, listed and removed (its
/// waiting executions join the queue); bad input is refused.
async fn key_limits_set_change_and_go(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create_all(
        &store,
        (0..6)
            .map(|i| keyed(&format!("k{i}"), None, "tenant-a"))
            .collect(),
    )
    .await;
    assert_eq!(pull(&store, "a", 1).await, ["k0"]);
    assert_eq!(set_limit(&store, "tenant-a", Some(2)).await, Some((2, 2)));
    assert_eq!(pull(&store, "a", 10).await, ["k1"], "one more fits");
    assert!(pull(&store, "a", 10).await.is_empty());
    assert_eq!(set_limit(&store, "tenant-a", Some(3)).await, Some((3, 3)));
    assert_eq!(pull(&store, "a", 10).await, ["k2"]);
    // Lowered: nothing more until the holders are under it.
    assert_eq!(set_limit(&store, "tenant-a", Some(1)).await, Some((1, 3)));
    finish(&store, "k0", "a").await;
    finish(&store, "k1", "a").await;
    assert!(pull(&store, "a", 10).await.is_empty(), "2 held, limit 1");
    finish(&store, "k2", "a").await;
    assert_eq!(pull(&store, "a", 10).await, ["k3"]);
    let listed = store.runs().concurrency_limits().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].key.as_str(), listed[0].limit, listed[0].running),
        ("tenant-a", 1, 1)
    );
    // Removed: the waiting ones join the queue.
    assert_eq!(set_limit(&store, "tenant-a", None).await, None);
    assert_eq!(pull(&store, "a", 10).await, ["k4", "k5"]);
    assert!(store.runs().concurrency_limits().await.unwrap().is_empty());
    // Created under a limit, a key's executions wait for it from the start.
    set_limit(&store, "tenant-b", Some(1)).await;
    create_all(
        &store,
        (0..3)
            .map(|i| keyed(&format!("b{i}"), None, "tenant-b"))
            .collect(),
    )
    .await;
    assert_eq!(pull(&store, "a", 10).await, ["b0"]);

    for (key, limit) in [("tenant-a", Some(0)), ("", Some(1)), ("t", Some(1_000_001))] {
        let err = store
            .runs()
            .set_concurrency_limit(key, limit)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
    }
    let bad = CreateExecution {
        options: Some(json!({ "execution": { "maxConcurrency": 0 } })),
        ..input("bad", None)
    };
    let err = store.runs().create(bad, &Scope::All).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err:?}");
}

/// A key shared by two runs: cancelling one run frees the key's slots for
/// the other; a retry of the failed puts them back waiting for slots (never
/// more handed out than the limit); pause keeps the waiting out of the
/// queue and resume lets them back in within the limit.
async fn controls_keep_the_limits(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    set_limit(&store, "api", Some(1)).await;
    let mut inputs = vec![input("a", None), input("b", None)];
    for i in 0..4 {
        inputs.push(keyed(&format!("a.{i}"), Some("a"), "api"));
        inputs.push(keyed(&format!("b.{i}"), Some("b"), "api"));
    }
    create_all(&store, inputs).await;
    assert_eq!(pull(&store, "w", 10).await, ["a", "a.0", "b"]);
    // Run a cancelled: its slot of the key goes to run b.
    store.runs().cancel("a", None, &Scope::All).await.unwrap();
    assert_eq!(pull(&store, "w", 10).await, ["b.0"]);

    // b.0 fails for good; retried, it waits for a slot again.
    store
        .queue()
        .finish_execution(crate::fixtures::finish("b.0", "w", ExecutionStatus::Failed))
        .await
        .unwrap();
    assert_eq!(pull(&store, "w", 10).await, ["b.1"]);
    let n = store
        .runs()
        .retry_executions("b", &[ExecutionStatus::Failed], &Scope::All)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(pull(&store, "w", 10).await.is_empty(), "b.1 holds the slot");
    finish(&store, "b.1", "w").await;
    // b.2 is due before the retried b.0 (a retry is due when it is made).
    assert_eq!(pull(&store, "w", 10).await, ["b.2"]);

    // Paused while waiting: out of the queue even when a slot frees.
    store.runs().pause("b", &Scope::All).await.unwrap();
    finish(&store, "b.2", "w").await;
    assert!(pull(&store, "w", 10).await.is_empty());
    let paused = crate::fixtures::stored(&store, "b.3").await;
    assert_eq!(paused.status, ExecutionStatus::Paused);
    store.runs().resume("b", &Scope::All).await.unwrap();
    assert_eq!(
        pull(&store, "w", 10).await,
        ["b.3"],
        "one, in hand-out order"
    );
    assert!(pull(&store, "w", 10).await.is_empty());
    finish(&store, "b.3", "w").await;
    assert_eq!(pull(&store, "w", 10).await, ["b.0"]);
}

/// A database made before concurrency limits migrates: a run whose root
/// set `maxConcurrency: 1` has its limit copied down: the child already
/// running holds the slot, the queued one waits for it, as new children do;
/// a run without a limit is not touched.
async fn an_old_database_migrates(backend: Backend) {
    let at = "'2026-01-01T00:00:00+00:00'";
    let rows = [
        (
            "lim",
            None,
            "running",
            r#"{"execution":{"maxConcurrency":1}}"#,
        ),
        ("lim.0", Some("lim"), "running", "{}"),
        ("lim.1", Some("lim"), "created", "{}"),
        ("free", None, "running", "{}"),
        ("free.0", Some("free"), "created", "{}"),
    ];
    let inserts: Vec<String> = rows
        .iter()
        .map(|(id, parent, status, options)| {
            let (root, parent, depth) = match parent {
                Some(p) => (p.to_string(), format!("'{p}'"), 1),
                None => (id.to_string(), "NULL".into(), 0),
            };
            format!(
                "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, \
                 status, execution_depth, created_at, updated_at, failure_count, options) \
                 VALUES ('{id}', 'f', 'o', '{root}', {parent}, '{status}', {depth}, {at}, {at}, 0, '{options}')"
            )
        })
        .collect();
    let (store, _dir) = crate::harness::old_database(backend, 14, &inserts).await;
    let lim1 = crate::fixtures::stored(&store, "lim.1").await;
    assert_eq!(lim1.max_concurrency, Some(1));
    // lim.0 (running, counted) holds the run's one slot; lim.1, queued
    // before the migration, now waits for it, as a new child does.
    let lim1 = crate::fixtures::stored(&store, "lim.1").await;
    assert_eq!(lim1.waiting, 1);
    store
        .runs()
        .create(input("lim.2", Some("lim")), &Scope::All)
        .await
        .unwrap();
    let new = crate::fixtures::stored(&store, "lim.2").await;
    assert_eq!((new.max_concurrency, new.waiting), (Some(1), 1));
    // The janitor's round admits nothing: the slot is held.
    store.runs().admit_left_over().await.unwrap();
    assert_eq!(pull(&store, "w", 10).await, ["free.0"]);
    let free = crate::fixtures::stored(&store, "free.0").await;
    assert_eq!(free.max_concurrency, None);
    store
        .runs()
        .update_execution_status(
            execstore::store::StatusUpdate::new("lim.0", ExecutionStatus::Completed),
            &Scope::All,
        )
        .await
        .unwrap();
    assert_eq!(pull(&store, "w", 10).await, ["lim.1"]);
    finish(&store, "lim.1", "w").await;
    assert_eq!(pull(&store, "w", 10).await, ["lim.2"]);
}

/// Waiting for a slot is not being stuck: recovery never reports a waiting
/// execution; a claim that lapses gives its execution back to the queue
/// still holding its slot (the next pull hands it out again, the waiting
/// stay out); a cancelled one set CREATED by hand waits for a slot again.
async fn waiting_is_not_stuck_and_a_lapse_keeps_the_slot(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let mut inputs = vec![limited_root("run", 1)];
    inputs.extend((0..3).map(|i| input(&format!("run.{i}"), Some("run"))));
    create_all(&store, inputs).await;
    let stuck: Vec<String> = store
        .queue()
        .get_executions_needing_recovery(100, &Scope::All)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(
        !stuck.contains(&"run.1".to_owned()) && !stuck.contains(&"run.2".to_owned()),
        "waiting ones reported as stuck: {stuck:?}"
    );
    assert!(stuck.contains(&"run.0".to_owned()), "{stuck:?}");
    // A short claim on the admitted one, let lapse.
    let claim = store
        .queue()
        .claim_execution("run.0", "short", 50)
        .await
        .unwrap()
        .claim
        .unwrap();
    let wait = (claim.expires_at - execstore::store::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    let ids: Vec<String> = store
        .queue()
        .claim_next_executions("next", 60_000, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        ["run", "run.0"],
        "the lapsed one again, the waiting stay out"
    );
    // A cancelled waiting one set CREATED again by hand waits again.
    assert_eq!(
        store
            .runs()
            .cancel("run.1", None, &Scope::All)
            .await
            .unwrap(),
        1
    );
    store
        .runs()
        .update_execution_status(
            execstore::store::StatusUpdate::new("run.1", ExecutionStatus::Created),
            &Scope::All,
        )
        .await
        .unwrap();
    assert!(
        pull(&store, "next", 10).await.is_empty(),
        "run.0 holds the slot"
    );
    finish(&store, "run.0", "next").await;
    assert_eq!(pull(&store, "next", 10).await, ["run.1"]);
}

crate::both_backends!(
    waiting_is_not_stuck_and_a_lapse_keeps_the_slot,
    an_old_database_migrates,
    sixteen_workers_never_exceed_the_limits,
    a_freed_slot_hands_out_the_next_at_once,
    key_limits_set_change_and_go,
    controls_keep_the_limits,
);
