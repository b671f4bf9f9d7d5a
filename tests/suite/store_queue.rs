//! The work queue: pulls that hand each execution out once, leases that come
//! back, release and finish, and waiting pulls woken by new work.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use execstore::store::{DbOptions, ExecutionStatus, ExecutionStore, Scope, StoreError};
use sea_orm::ConnectionTrait;

use crate::fixtures::{create, expire_lease, finish, input, OWNER};
use crate::harness::{fresh, fresh_with, Backend};

async fn create_in(store: &ExecutionStore, id: &str, flow: &str) {
    let mut i = input(id, None);
    i.flow_id = flow.into();
    store.runs().create(i, &Scope::All).await.unwrap();
}

/// `n` CREATED executions of `flow` in one statement.
async fn bulk(db: &sea_orm::DatabaseConnection, backend: Backend, n: usize, flow: &str) {
    let numbers = match backend {
        Backend::Postgres => format!("(SELECT g FROM generate_series(1, {n}) AS g) n"),
        Backend::Sqlite => format!(
            "(WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {n}) SELECT g FROM n) n"
        ),
    };
    let at = "(SELECT created_at FROM executions WHERE id = 'seed')";
    db.execute_unprepared(&format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, \
         created_at, updated_at, failure_count) SELECT '{flow}' || CAST(g AS TEXT), '{flow}', '{OWNER}', \
         '{flow}' || CAST(g AS TEXT), 'created', 0, {at}, {at}, 0 FROM {numbers}"
    ))
    .await
    .unwrap();
}

async fn drain_exactly_once_with_mixed_limits_and_waits(backend: Backend) {
    const N: usize = 5000;
    let t = fresh(backend).await;
    let store = t.store();
    create_in(&store, "seed", "elsewhere").await;
    bulk(&t.db, backend, N, "drain").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (store, seen) = (store.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            let limit = [1, 10, 50, 100][w % 4];
            let wait = Duration::from_millis([0, 20][w % 2]);
            for _ in 0..10_000 {
                let got = store
                    .queue()
                    .claim_next_executions_waiting(
                        &format!("w{w}"),
                        60_000,
                        Some("drain"),
                        limit,
                        wait,
                    )
                    .await
                    .unwrap();
                if got.is_empty() && seen.lock().unwrap().len() >= N {
                    return;
                }
                seen.lock().unwrap().extend(got.into_iter().map(|e| e.id));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), N, "no execution handed out twice");
    assert_eq!(unique.len(), N, "every execution handed out");
}

async fn release_finish_and_lapse_decide_what_is_claimable(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let next = |worker: &'static str| {
        let store = store.clone();
        async move {
            store
                .queue()
                .claim_next_executions(worker, 60_000, Some("flow-1"), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    for id in ["a", "b", "c", "d"] {
        create(&store, id, None).await;
    }
    assert_eq!(next("w1").await, ["a", "b", "c", "d"]);
    assert!(next("w2").await.is_empty(), "all leased");

    // Release: claimable again at once.
    assert!(store.queue().release_execution("a", "w1").await.unwrap());
    assert_eq!(next("w2").await, ["a"]);

    // Finish by the holder: COMPLETED leaves the queue for good.
    let done = store
        .queue()
        .finish_execution(finish("b", "w1", ExecutionStatus::Completed))
        .await
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Completed);
    assert!(done.completed_at.is_some());
    assert!(done.lease_expires_at.is_none());
    let claim = store
        .reads()
        .get_claim_for_execution("b", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.status, entity::ClaimStatus::Released);

    // Finish back to CREATED: a retry, with the failure counted.
    let mut retry = finish("c", "w1", ExecutionStatus::Created);
    retry.error_message = Some("boom".into());
    // Due again at once (a retry waits for its backoff otherwise).
    retry.retry_in_ms = Some(0);
    let again = store.queue().finish_execution(retry).await.unwrap();
    assert_eq!(again.failure_count, 1);
    assert_eq!(again.last_failure_reason.as_deref(), Some("boom"));
    assert!(again.processing_worker_id.is_none() && again.completed_at.is_none());
    assert_eq!(next("w2").await, ["c"]);

    // Refusals: not the holder, a lapsed lease, absent, a non-final status.
    let err = store
        .queue()
        .finish_execution(finish("d", "w2", ExecutionStatus::Completed))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    expire_lease(&t.db, "d").await;
    let err = store
        .queue()
        .finish_execution(finish("d", "w1", ExecutionStatus::Completed))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "lapsed: {err:?}");
    let row = store.reads().get("d", &Scope::All).await.unwrap().unwrap();
    assert_eq!(
        row.status,
        ExecutionStatus::Created,
        "a refused finish changes nothing"
    );
    let err = store
        .queue()
        .finish_execution(finish("nope", "w1", ExecutionStatus::Completed))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    let err = store
        .queue()
        .finish_execution(finish("a", "w2", ExecutionStatus::Running))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput {
            field: "status",
            ..
        }
    ));

    // The lapsed lease comes back to the queue, and a heartbeat keeps one.
    assert_eq!(next("w3").await, ["d"]);
    assert!(store
        .queue()
        .extend_claim("d", "w3", 120_000)
        .await
        .unwrap());
    let row = store.reads().get("d", &Scope::All).await.unwrap().unwrap();
    let claim = store
        .reads()
        .get_claim_for_execution("d", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.lease_expires_at,
        Some(claim.expires_at),
        "the row mirrors the lease"
    );
    assert!(next("w4").await.is_empty());
}

/// Work created at any moment around a waiter's empty check still wakes it:
/// each round races a create against a waiter that starts at the same time.
async fn no_lost_wake_up(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for round in 0..30 {
        let flow = format!("wake-{round}");
        let waiter = {
            let (store, flow) = (store.clone(), flow.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let got = store
                    .queue()
                    .claim_next_executions_waiting(
                        "w",
                        60_000,
                        Some(&flow),
                        1,
                        Duration::from_secs(20),
                    )
                    .await
                    .unwrap();
                (got, started.elapsed())
            })
        };
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        create_in(&store, &format!("job-{round}"), &flow).await;
        let (got, waited) = waiter.await.unwrap();
        assert_eq!(got.len(), 1, "round {round}: woken with the work");
        assert!(
            waited < Duration::from_secs(10),
            "round {round}: woken, not timed out ({waited:?})"
        );
    }
}

/// Waiting pulls hold no database connection: with a pool of two, eight
/// waiters leave the database free for everyone else, then each gets work.
async fn waiting_holds_no_connection(backend: Backend) {
    let t = fresh_with(
        backend,
        &DbOptions {
            max_connections: 2,
            acquire_timeout: Duration::from_secs(20),
            ..DbOptions::default()
        },
    )
    .await;
    let store = t.store();
    create(&store, "other", None).await;
    let mut waiters = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        waiters.push(tokio::spawn(async move {
            store
                .queue()
                .claim_next_executions_waiting(
                    &format!("w{w}"),
                    60_000,
                    Some("idle"),
                    1,
                    Duration::from_secs(20),
                )
                .await
                .unwrap()
        }));
    }
    tokio::task::yield_now().await;
    let started = Instant::now();
    for i in 0..8 {
        assert!(store
            .reads()
            .get("other", &Scope::All)
            .await
            .unwrap()
            .is_some());
        create_in(&store, &format!("idle-{i}"), "idle").await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the pool stayed free"
    );
    let mut got = HashSet::new();
    for w in waiters {
        for e in w.await.unwrap() {
            assert!(got.insert(e.id), "handed out once");
        }
    }
    assert_eq!(got.len(), 8, "every waiter got one");
}

/// A waiter on one server process is woken by a create on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_wait_woken_across_processes() {
    let t = fresh(Backend::Postgres).await;
    let a = t.store();
    let b = ExecutionStore::new(sea_orm::Database::connect(&t.url).await.unwrap());
    a.relay_events_across_processes(&t.url).await.unwrap();
    b.relay_events_across_processes(&t.url).await.unwrap();
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = a
                .queue()
                .claim_next_executions_waiting("w", 60_000, Some("far"), 1, Duration::from_secs(20))
                .await
                .unwrap();
            (got, started.elapsed())
        })
    };
    // Let the waiter find the queue empty first (if it has not, it simply
    // finds the work on its first try: the assertion holds either way).
    tokio::task::yield_now().await;
    create_in(&b, "remote", "far").await;
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["remote"]
    );
    assert!(
        waited < Duration::from_secs(10),
        "woken by the other process ({waited:?})"
    );
}

/// A requeue on one server process makes the others read their queues from
/// the start (its NOTIFY says so): a release there of an execution older
/// than this process's head is handed out here next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_requeue_elsewhere_drops_the_head() {
    let t = fresh(Backend::Postgres).await;
    let a = t.store().with_queue_head_ttl(Duration::from_secs(3600));
    let b = ExecutionStore::new(sea_orm::Database::connect(&t.url).await.unwrap());
    a.relay_events_across_processes(&t.url).await.unwrap();
    b.relay_events_across_processes(&t.url).await.unwrap();
    for id in ["z", "a", "b", "c"] {
        create_in(&a, id, "f").await;
    }
    assert!(b
        .queue()
        .claim_execution("z", "wb", 60_000)
        .await
        .unwrap()
        .acquired());
    let pull = |limit: i64| pulled(&a, "wa", limit);
    assert_eq!(pull(1).await, ["a"]);
    assert_eq!(pull(1).await, ["b"], "after the head");
    let before = a.bus().requeues();
    let mut work = a.bus().watch_work();
    work.borrow_and_update();
    assert!(b.queue().release_execution("z", "wb").await.unwrap());
    while a.bus().requeues() == before {
        tokio::time::timeout(Duration::from_secs(10), work.changed())
            .await
            .expect("the other process's requeue arrives")
            .unwrap();
    }
    assert_eq!(pull(1).await, ["z"], "the older execution first");
    assert_eq!(pull(1).await, ["c"]);
}

/// PostgreSQL keeps the pull's plan across calls instead of planning the
/// statement again each time (with its limit bound as a parameter, every
/// call was planned anew: a fifth of PostgreSQL's time on limit-1 pulls).
/// One connection, so the prepared statements' counters are the pulls'.
/// (Fails with the limit bound: every call planned anew.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_pulls_keep_their_plan() {
    let t = fresh_with(
        Backend::Postgres,
        &DbOptions {
            max_connections: 1,
            ..DbOptions::default()
        },
    )
    .await;
    let store = t.store();
    create(&store, "seed", None).await;
    // Queues of realistic size: PostgreSQL costs a bound limit's generic
    // plan for a tenth of the queue; and with two flows, a plan for the
    // actual flow and head looked cheaper than the kept one to it.
    bulk(&t.db, Backend::Postgres, 100_000, "kept").await;
    bulk(&t.db, Backend::Postgres, 100_000, "other").await;
    t.db.execute_unprepared("ANALYZE executions").await.unwrap();
    for limit in [1, 50] {
        for _ in 0..20 {
            let got = store
                .queue()
                .claim_next_executions("w", 60_000, Some("kept"), limit)
                .await
                .unwrap();
            assert_eq!(got.len() as i64, limit);
        }
    }
    // Each pull statement this connection prepared (from the start of the
    // queue, and from after its head): planned for its first five calls at
    // most, then the kept plan.
    let rows = t
        .db
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT CAST(generic_plans AS BIGINT) AS generic, CAST(custom_plans AS BIGINT) AS custom \
             FROM pg_prepared_statements WHERE statement LIKE '%WITH candidates AS%'",
        ))
        .await
        .unwrap();
    assert!(
        !rows.is_empty(),
        "the pulls are prepared statements of this connection"
    );
    let mut kept = 0;
    for row in rows {
        let generic: i64 = row.try_get("", "generic").unwrap();
        let custom: i64 = row.try_get("", "custom").unwrap();
        assert!(
            custom <= 5,
            "a pull statement was planned anew {custom} times ({generic} on the kept plan)"
        );
        kept += generic;
    }
    assert!(kept >= 6, "the pulls ran {kept} times on a kept plan");

    // And the kept plan of the pull from the head enters the queue's index
    // at the head (an index condition, not a filter over the whole flow).
    let name: String =
        t.db.query_one(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT name FROM pg_prepared_statements \
             WHERE statement LIKE '%WITH candidates AS%' AND statement LIKE '%(COALESCE(run_at, created_at), id) >%' \
               AND statement LIKE '%LIMIT 50%'",
        ))
        .await
        .unwrap()
        .expect("the pull from the head was prepared")
        .try_get("", "name")
        .unwrap();
    let plan: Vec<String> =
        t.db.query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("EXPLAIN EXECUTE {name}('w', now(), now(), 'kept', 0, now(), 'kept1')"),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect();
    assert!(
        plan.iter().any(|line| line.contains("Index Cond")
            && line.contains("ROW(COALESCE(run_at, created_at), id) > ROW(")),
        "the head is not an index condition:\n{}",
        plan.join("\n")
    );
}

/// The worker round over GraphQL: pull with a wait, finish.
async fn worker_round_over_graphql(backend: Backend) {
    use serde_json::json;
    let api = crate::api_support::Api::new(backend).await;
    crate::api_support::create(&api, "job", None).await;
    let pull = "mutation($wait: Int) { claimNextExecutions(workerId: \"w\", timeoutMs: 60000, waitMs: $wait) { id processingWorkerId } }";
    let data = api.ok(pull, json!({ "wait": 1000 })).await;
    assert_eq!(data["claimNextExecutions"][0]["id"], "job");
    let finish = "mutation($w: String!) { finishExecution(input: { executionId: \"job\", workerId: $w, status: FAILED, errorMessage: \"bad\", errorNodeId: \"n1\" }) { status errorMessage errorNodeId completedAt claim { status } } }";
    assert_eq!(
        api.error_code(finish, json!({ "w": "intruder" })).await,
        "CONFLICT"
    );
    let data = api.ok(finish, json!({ "w": "w" })).await;
    let done = &data["finishExecution"];
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorMessage"], "bad");
    assert_eq!(done["errorNodeId"], "n1");
    assert_eq!(done["claim"]["status"], "RELEASED");
    assert!(done["completedAt"].is_string());
    assert_eq!(
        api.error_code(finish, json!({ "w": "w" })).await,
        "CONFLICT",
        "once"
    );
    for wait in [-1, 25_001] {
        assert_eq!(
            api.error_code(pull, json!({ "wait": wait })).await,
            "BAD_USER_INPUT"
        );
    }
    let empty = api.ok(pull, json!({ "wait": 50 })).await;
    assert_eq!(
        empty["claimNextExecutions"],
        json!([]),
        "an empty queue answers after the wait"
    );
}

/// A database made before the queue moved onto the row keeps its meaning:
/// the migration copies live leases onto their executions.
async fn existing_database_migrates_its_leases(backend: Backend) {
    let at = "'2026-01-01T00:00:00+00:00'";
    let later = "'2999-01-01T00:00:00+00:00'";
    let mut writes: Vec<String> = ["held", "released", "free"]
        .iter()
        .map(|id| format!(
            "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, \
             created_at, updated_at, failure_count) VALUES ('{id}', 'f', '{OWNER}', '{id}', 'created', 0, {at}, {at}, 0)"
        ))
        .collect();
    for (id, status) in [("held", "active"), ("released", "released")] {
        writes.push(format!(
            "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
             VALUES ('{id}', 'w-old', {at}, {later}, {at}, '{status}')"
        ));
    }
    let (store, _dir) = crate::harness::old_database(backend, 2, &writes).await;
    let held = store
        .reads()
        .get("held", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    let claim = store
        .reads()
        .get_claim_for_execution("held", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        held.lease_expires_at,
        Some(claim.expires_at),
        "the live lease is on the row"
    );
    let got: Vec<String> = store
        .queue()
        .claim_next_executions("w-new", 60_000, Some("f"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(got, ["free", "released"], "the held one stays held");
}

/// The ids `worker` pulls from flow `f`, `limit` at most.
async fn pulled(store: &ExecutionStore, worker: &str, limit: i64) -> Vec<String> {
    store
        .queue()
        .claim_next_executions(worker, 60_000, Some("f"), limit)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// As another process would put `id` back in the queue before its NOTIFY
/// arrives: behind this store's back, so nothing is signalled here.
async fn requeue_unseen(db: &sea_orm::DatabaseConnection, id: &str) {
    db.execute_unprepared(&format!(
        "UPDATE execution_claims SET status = 'released' WHERE execution_id = '{id}'"
    ))
    .await
    .unwrap();
    db.execute_unprepared(&format!(
        "UPDATE executions SET lease_expires_at = NULL, processing_worker_id = NULL, \
         processing_started_at = NULL WHERE id = '{id}'"
    ))
    .await
    .unwrap();
}

/// On PostgreSQL a pull starts after the oldest execution the previous
/// pull of its flow took (`QueueHeads`: the claimed rows' old index entries
/// at the head of the queue are not walked again), and still hands out
/// older work first whenever this process knows of it: a release, a pull
/// that finds too little after the head. Work put back unseen (by
/// another process, before its NOTIFY) waits at most the head's lifetime.
/// SQLite has no such entries and always reads from the start.
async fn pulls_start_after_their_head_but_not_past_older_work(backend: Backend) {
    let t = fresh(backend).await;
    // Heads kept for an hour, so no step depends on how fast the test runs.
    let store = t.store().with_queue_head_ttl(Duration::from_secs(3600));
    for id in ["a", "b", "c", "d", "e"] {
        create_in(&store, id, "f").await;
    }
    let pull = |limit: i64| pulled(&store, "w", limit);
    assert_eq!(pull(1).await, ["a"]);
    // Released: the oldest again, though the head was past it.
    assert!(store.queue().release_execution("a", "w").await.unwrap());
    assert_eq!(pull(1).await, ["a"]);
    assert_eq!(pull(1).await, ["b"]);
    // (A retry is due again later than the work already due: it queues
    // behind it, see `store_time`.)
    // Put back unseen while the head is past it: PostgreSQL hands out the
    // newer work first; a store whose heads live no time reads from the
    // start and finds it.
    requeue_unseen(&t.db, "a").await;
    let next = pull(1).await;
    match backend {
        Backend::Postgres => {
            assert_eq!(next, ["c"], "the pull started after its head");
            // A head lives for its time only: one of 100 ms, looked at after
            // 300 ms, is gone, and the pull reads from the start.
            let short = store.with_queue_head_ttl(Duration::from_millis(100));
            requeue_unseen(&t.db, "c").await;
            let pull_short = |limit: i64| pulled(&short, "w", limit);
            assert_eq!(
                pull_short(1).await,
                ["a"],
                "its first pull reads from the start"
            );
            requeue_unseen(&t.db, "a").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                pull_short(1).await,
                ["a"],
                "from the start once the head is gone"
            );
            assert_eq!(pull_short(1).await, ["c"]);
        }
        Backend::Sqlite => {
            assert_eq!(next, ["a"]);
            assert_eq!(pull(1).await, ["c"]);
        }
    }
    assert_eq!(pull(1).await, ["d"]);
    // Put back unseen, older than the head: a pull that finds too little
    // after the head looks from the start at once.
    requeue_unseen(&t.db, "c").await;
    assert_eq!(pull(10).await, ["c", "e"]);
    assert!(pull(10).await.is_empty());
}

crate::both_backends!(
    existing_database_migrates_its_leases,
    worker_round_over_graphql,
    drain_exactly_once_with_mixed_limits_and_waits,
    release_finish_and_lapse_decide_what_is_claimable,
    no_lost_wake_up,
    waiting_holds_no_connection,
    pulls_start_after_their_head_but_not_past_older_work,
);
