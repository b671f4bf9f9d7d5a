use std::collections::HashMap;
use std::sync::Arc;

use entity::ClaimStatus;
use execstore::store::ClaimRejection;
use execstore::store::{ExecutionStatus, ExecutionStore, Scope, StatusUpdate, StoreError};
use sea_orm::sea_query::Expr;
use sea_orm::EntityTrait;
use tokio::sync::Barrier;

use crate::fixtures::{create, create_with_status, expire_lease, ts};
use crate::harness::{fresh, Backend};

async fn claim_rules(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "e", None).await;

    let first = store
        .queue()
        .claim_execution("e", "w1", 60_000)
        .await
        .unwrap();
    assert!(first.acquired());
    let claim = first.claim.clone().unwrap();
    assert_eq!(
        (claim.worker_id.as_str(), claim.status),
        ("w1", ClaimStatus::Active)
    );
    assert!(claim.expires_at > claim.claimed_at);
    let e = store.reads().get("e", &Scope::All).await.unwrap().unwrap();
    assert_eq!(e.processing_worker_id.as_deref(), Some("w1"));
    assert!(e.processing_started_at.is_some());

    let other = store
        .queue()
        .claim_execution("e", "w2", 60_000)
        .await
        .unwrap();
    assert!(!other.acquired());
    assert_eq!(other.rejection, Some(ClaimRejection::HeldByOther));

    // Same worker: a re-claim extends and keeps claimedAt.
    let again = store
        .queue()
        .claim_execution("e", "w1", 120_000)
        .await
        .unwrap();
    let renewed = again.claim.unwrap();
    assert_eq!(renewed.claimed_at, claim.claimed_at);
    assert!(renewed.expires_at > claim.expires_at);

    let absent = store
        .queue()
        .claim_execution("nope", "w1", 1000)
        .await
        .unwrap();
    assert_eq!(absent.rejection, Some(ClaimRejection::NotFound));

    for (id, status) in [
        ("done", ExecutionStatus::Completed),
        ("failed", ExecutionStatus::Failed),
        ("stopped", ExecutionStatus::Stopped),
    ] {
        create_with_status(&store, id, None, status).await;
        let out = store.queue().claim_execution(id, "w1", 1000).await.unwrap();
        assert_eq!(out.rejection, Some(ClaimRejection::Terminal), "{id}");
    }
    for (timeout, ok) in [
        (0, false),
        (1, true),
        (86_400_000, true),
        (86_400_001, false),
        (-5, false),
    ] {
        create(&store, &format!("t{timeout}"), None).await;
        let res = store
            .queue()
            .claim_execution(&format!("t{timeout}"), "w", timeout)
            .await;
        assert_eq!(res.is_ok(), ok, "timeout {timeout}");
        if !ok {
            assert!(matches!(
                res.unwrap_err(),
                StoreError::InvalidInput {
                    field: "timeoutMs",
                    ..
                }
            ));
        }
    }
    let err = store
        .queue()
        .claim_execution("e", "", 1000)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput {
            field: "workerId",
            ..
        }
    ));
}

async fn released_and_expired_claims_can_be_claimed_again(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "e", None).await;
    assert!(store
        .queue()
        .claim_execution("e", "w1", 60_000)
        .await
        .unwrap()
        .acquired());
    assert!(
        !store.queue().release_execution("e", "w2").await.unwrap(),
        "only the holder releases"
    );
    assert_eq!(
        store
            .reads()
            .get_claim_for_execution("e", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .status,
        ClaimStatus::Active
    );
    assert!(store.queue().release_execution("e", "w1").await.unwrap());
    let released = store
        .reads()
        .get_claim_for_execution("e", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.status, ClaimStatus::Released);
    assert_eq!(
        store
            .reads()
            .get("e", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .processing_worker_id,
        None
    );
    assert!(
        !store.queue().release_execution("e", "w1").await.unwrap(),
        "already released"
    );

    // (fix) the seed refused forever once released.
    assert!(store
        .queue()
        .claim_execution("e", "w2", 60_000)
        .await
        .unwrap()
        .acquired());
    // Active but past expiry: takeable by another worker.
    expire_lease(&t.db, "e").await;
    assert!(store
        .queue()
        .claim_execution("e", "w3", 60_000)
        .await
        .unwrap()
        .acquired());
    assert_eq!(
        store
            .reads()
            .get("e", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .processing_worker_id
            .as_deref(),
        Some("w3")
    );

    // Marked expired by expireOldClaims: claimable again.
    expire_lease(&t.db, "e").await;
    assert!(
        store
            .reads()
            .get_active_claims(&Scope::All)
            .await
            .unwrap()
            .is_empty(),
        "a lapsed lease is not active"
    );
    assert_eq!(store.queue().expire_old_claims().await.unwrap(), 1);
    assert_eq!(store.queue().expire_old_claims().await.unwrap(), 0);
    assert_eq!(
        store
            .reads()
            .get_claim_for_execution("e", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .status,
        ClaimStatus::Expired
    );
    assert!(
        !store.queue().extend_claim("e", "w3", 1000).await.unwrap(),
        "an expired claim cannot be extended"
    );
    assert!(store
        .queue()
        .claim_execution("e", "w4", 60_000)
        .await
        .unwrap()
        .acquired());

    // (fix) a STOPPED execution is not claimable even with no claim held.
    store
        .runs()
        .update_execution_status(
            StatusUpdate::new("e", ExecutionStatus::Stopped),
            &Scope::All,
        )
        .await
        .unwrap();
    store.queue().release_execution("e", "w4").await.unwrap();
    assert_eq!(
        store
            .queue()
            .claim_execution("e", "w5", 1000)
            .await
            .unwrap()
            .rejection,
        Some(ClaimRejection::Terminal)
    );
}

async fn extend_and_active_claims(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "a", None).await;
    create(&store, "b", None).await;
    let claim = store
        .queue()
        .claim_execution("a", "w1", 60_000)
        .await
        .unwrap()
        .claim
        .unwrap();
    store
        .queue()
        .claim_execution("b", "w2", 60_000)
        .await
        .unwrap();
    assert!(store
        .queue()
        .extend_claim("a", "w1", 600_000)
        .await
        .unwrap());
    let extended = store
        .reads()
        .get_claim_for_execution("a", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert!(extended.expires_at > claim.expires_at);
    assert!(extended.heartbeat_at >= claim.heartbeat_at);
    assert!(
        !store.queue().extend_claim("a", "w2", 1000).await.unwrap(),
        "not the holder"
    );
    assert!(!store
        .queue()
        .extend_claim("absent", "w1", 1000)
        .await
        .unwrap());
    let err = store.queue().extend_claim("a", "w1", 0).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput {
            field: "timeoutMs",
            ..
        }
    ));

    let active: Vec<_> = store
        .reads()
        .get_active_claims(&Scope::All)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.execution_id)
        .collect();
    assert_eq!(active, vec!["a", "b"]);
    expire_lease(&t.db, "b").await;
    assert!(
        !store.queue().extend_claim("b", "w2", 1000).await.unwrap(),
        "a lapsed lease cannot be extended"
    );
    let active: Vec<_> = store
        .reads()
        .get_active_claims(&Scope::All)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.execution_id)
        .collect();
    assert_eq!(active, vec!["a"]);
    assert!(store
        .reads()
        .get_active_claims(&Scope::Owner("stranger".into()))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .reads()
        .get_claim_for_execution("a", &Scope::Owner("stranger".into()))
        .await
        .unwrap()
        .is_none());
}

/// 32 concurrent claimers, one execution: exactly one wins. Ten rounds.
async fn concurrent_claimers_one_winner(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for round in 0..10 {
        let id = format!("race-{round}");
        create(&store, &id, None).await;
        let barrier = Arc::new(Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|w| {
                let (store, id, barrier) = (store.clone(), id.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .queue()
                        .claim_execution(&id, &format!("worker-{w}"), 60_000)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (w, task) in tasks.into_iter().enumerate() {
            let outcome = task
                .await
                .unwrap()
                .expect("no claimer fails (no 'database is locked')");
            if outcome.acquired() {
                winners.push(w);
            } else {
                assert_eq!(outcome.rejection, Some(ClaimRejection::HeldByOther));
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let e = store.reads().get(&id, &Scope::All).await.unwrap().unwrap();
        assert_eq!(
            e.processing_worker_id,
            Some(format!("worker-{}", winners[0]))
        );
    }
}

/// 16 workers each try every one of 300 executions: each acquired once.
async fn sixteen_workers_300_executions(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let ids: Vec<String> = (0..300).map(|i| format!("job-{i:03}")).collect();
    for id in &ids {
        create(&store, id, None).await;
    }
    let ids = Arc::new(ids);
    let barrier = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let (store, ids, barrier) = (store.clone(), ids.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut won = Vec::new();
                // Each worker starts at a different place to maximise collisions.
                for k in 0..ids.len() {
                    let id = &ids[(k + w * 19) % ids.len()];
                    if store
                        .queue()
                        .claim_execution(id, &format!("w{w}"), 60_000)
                        .await
                        .unwrap()
                        .acquired()
                    {
                        won.push(id.clone());
                    }
                }
                won
            })
        })
        .collect();
    let mut count: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for id in task.await.unwrap() {
            *count.entry(id).or_default() += 1;
        }
    }
    assert_eq!(count.len(), 300, "every execution acquired");
    assert!(count.values().all(|&n| n == 1), "each exactly once");
}

/// 16 workers drain 2,000 executions with claimNextExecutions: every one
/// delivered exactly once, none to two workers.
async fn claim_next_delivers_exactly_once(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    bulk_create(&store, 2000, "flow-1").await;
    create(&store, "other-flow", None).await; // flow-1 too, but then:
    store
        .runs()
        .update_execution_status(
            StatusUpdate::new("other-flow", ExecutionStatus::Running),
            &Scope::All,
        )
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut got = Vec::new();
                loop {
                    let batch = store
                        .queue()
                        .claim_next_executions(&format!("w{w}"), 60_000, Some("flow-1"), 7)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    for e in &batch {
                        assert_eq!(e.processing_worker_id, Some(format!("w{w}")));
                        assert_eq!(e.status, ExecutionStatus::Created);
                    }
                    assert!(
                        batch
                            .windows(2)
                            .all(|p| (p[0].created_at, &p[0].id) <= (p[1].created_at, &p[1].id)),
                        "oldest first"
                    );
                    got.extend(batch.into_iter().map(|e| e.id));
                }
                got
            })
        })
        .collect();
    let mut count: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for id in task.await.unwrap() {
            *count.entry(id).or_default() += 1;
        }
    }
    assert_eq!(count.len(), 2000);
    assert!(count.values().all(|&n| n == 1));
    assert!(!count.contains_key("other-flow"), "only CREATED executions");
}

async fn claim_next_filters_and_bounds(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "a", None).await;
    create(&store, "b", None).await;
    let mut other = crate::fixtures::input("c", None);
    other.flow_id = "flow-2".into();
    store.runs().create(other, &Scope::All).await.unwrap();
    store
        .queue()
        .claim_execution("a", "holder", 60_000)
        .await
        .unwrap();

    let got = store
        .queue()
        .claim_next_executions("w", 60_000, Some("flow-2"), 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["c"]
    );
    let got = store
        .queue()
        .claim_next_executions("w", 60_000, None, 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["b"],
        "a is held"
    );
    assert!(store
        .queue()
        .claim_next_executions("w", 60_000, None, 10)
        .await
        .unwrap()
        .is_empty());
    expire_lease(&t.db, "a").await;
    let got = store
        .queue()
        .claim_next_executions("w", 60_000, None, 1)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["a"],
        "a lapsed lease is claimable"
    );
    for limit in [0, 101] {
        let err = store
            .queue()
            .claim_next_executions("w", 60_000, None, limit)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::InvalidInput { field: "limit", .. }
        ));
    }
}

async fn bulk_create(store: &ExecutionStore, n: usize, flow: &str) {
    for i in 0..n {
        let mut input = crate::fixtures::input(&format!("q{i:05}"), None);
        input.flow_id = flow.into();
        store.runs().create(input, &Scope::All).await.unwrap();
    }
}

async fn recovery_lock_is_a_lease(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|h| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .queue()
                        .try_acquire_recovery_lock(round, &format!("h{h}"), 60_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += task.await.unwrap() as usize;
        }
        assert_eq!(winners, 1, "round {round}");
    }
    assert!(store
        .queue()
        .try_acquire_recovery_lock(100, "a", 60_000)
        .await
        .unwrap());
    assert!(
        store
            .queue()
            .try_acquire_recovery_lock(100, "a", 60_000)
            .await
            .unwrap(),
        "the holder renews"
    );
    assert!(!store
        .queue()
        .try_acquire_recovery_lock(100, "b", 60_000)
        .await
        .unwrap());
    assert!(
        !store.queue().release_recovery_lock(100, "b").await.unwrap(),
        "only the holder frees it"
    );
    assert!(store.queue().release_recovery_lock(100, "a").await.unwrap());
    assert!(
        store
            .queue()
            .try_acquire_recovery_lock(100, "b", 60_000)
            .await
            .unwrap(),
        "free again"
    );
    // An expired lease is taken over.
    entity::recovery_lock::Entity::update_many()
        .col_expr(entity::recovery_lock::Column::ExpiresAt, Expr::value(ts(0)))
        .exec(&t.db)
        .await
        .unwrap();
    assert!(store
        .queue()
        .try_acquire_recovery_lock(100, "c", 60_000)
        .await
        .unwrap());
    let err = store
        .queue()
        .try_acquire_recovery_lock(100, "c", 0)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput { field: "ttlMs", .. }
    ));
}

crate::both_backends!(
    claim_rules,
    released_and_expired_claims_can_be_claimed_again,
    extend_and_active_claims,
    concurrent_claimers_one_winner,
    sixteen_workers_300_executions,
    claim_next_delivers_exactly_once,
    claim_next_filters_and_bounds,
    recovery_lock_is_a_lease,
);
