//! Many executions per request: `createExecutions` all or nothing and in
//! input order, `finishExecutions` and `extendClaims` per item and never on
//! another worker's execution, and a fleet draining with batched rounds.

use std::collections::HashSet;

use execstore::store::{CreateExecution, ExecutionStatus, ExecutionStore, Scope, StoreError};
use sea_orm::ConnectionTrait;

use crate::fixtures::{create, finish, input};
use crate::harness::{fresh, Backend};

async fn rows(store: &ExecutionStore) -> i64 {
    count(store, "").await
}

async fn count(store: &ExecutionStore, filter: &str) -> i64 {
    let db = store.connection();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM executions {filter}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn a_thousand_inputs_land_whole_and_in_order(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    let mut inputs: Vec<CreateExecution> = (0..999)
        .map(|i| {
            let mut x = input(&format!("k{:04}", 998 - i), Some("root"));
            if i % 100 == 0 {
                x.id = None; // generated
            }
            x.options = Some(serde_json::json!({ "n": i }));
            x
        })
        .collect();
    // A parent earlier in the same batch.
    inputs.push(input("grandchild", Some("k0997")));
    let created = store.runs().create_many(inputs, &Scope::All).await.unwrap();
    assert_eq!(created.len(), 1000);
    for (i, e) in created.iter().take(999).enumerate() {
        if i % 100 != 0 {
            assert_eq!(e.id, format!("k{:04}", 998 - i), "input order");
        }
        assert_eq!(e.options, Some(serde_json::json!({ "n": i })));
        assert_eq!(
            (e.execution_depth, e.root_execution_id.as_str()),
            (1, "root")
        );
        assert_eq!(e.status, ExecutionStatus::Created);
    }
    let last = &created[999];
    assert_eq!((last.id.as_str(), last.execution_depth), ("grandchild", 2));
    assert_eq!(last.parent_execution_id.as_deref(), Some("k0997"));
    assert_eq!(rows(&store).await, 1001);
    let ids: HashSet<&str> = created.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 1000);
    // Idempotent on ids, as createExecution: the same batch again updates.
    let again = store
        .runs()
        .create_many(vec![input("grandchild", Some("k0997"))], &Scope::All)
        .await
        .unwrap();
    assert_eq!(again[0].created_at, last.created_at);
    assert_eq!(rows(&store).await, 1001);
}

/// Each answer is the row as stored and read back: statuses that stamp a
/// time, JSON as the database keeps it (a JSON null as none), a child of an
/// earlier input; then a batch of new ids and existing ones together (the
/// existing updated, as `createExecution` would).
async fn a_batch_answers_what_it_stored(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    let with = |id: &str, parent: Option<&str>, status: ExecutionStatus| {
        let mut x = input(id, parent);
        x.status = Some(status);
        x
    };
    let mut a = with("a", Some("root"), ExecutionStatus::Running);
    a.options = Some(serde_json::json!({ "b": 1, "a": [1, 2.5, "x"], "n": null }));
    a.integration = Some(serde_json::Value::Null);
    let mut b = with("b", None, ExecutionStatus::Completed);
    b.external_events = Some(serde_json::json!([{ "z": { "y": 1, "x": 2 } }]));
    let inputs = vec![
        a,
        b,
        with("c", Some("a"), ExecutionStatus::Paused),
        with("d", Some("c"), ExecutionStatus::Created),
    ];
    let answered = store.runs().create_many(inputs, &Scope::All).await.unwrap();
    let ids: Vec<&str> = answered.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    for e in &answered {
        let stored = store
            .reads()
            .get(&e.id, &Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e, &stored, "the answer for {} is the stored row", e.id);
    }
    let (a, b) = (&answered[0], &answered[1]);
    assert_eq!((a.started_at, a.completed_at), (Some(a.created_at), None));
    assert_eq!((b.started_at, b.completed_at), (None, Some(b.created_at)));
    assert_eq!(a.integration, None);
    assert_eq!(
        (
            answered[3].execution_depth,
            answered[3].root_execution_id.as_str()
        ),
        (3, "root")
    );

    let mut again = with("a", Some("root"), ExecutionStatus::Running);
    again.options = Some(serde_json::json!({ "second": true }));
    let mixed = store
        .runs()
        .create_many(
            vec![with("e", Some("d"), ExecutionStatus::Created), again],
            &Scope::All,
        )
        .await
        .unwrap();
    assert_eq!(mixed[0].id, "e");
    assert_eq!(
        mixed[1].created_at, a.created_at,
        "an existing id is updated"
    );
    assert_eq!(
        mixed[1].options,
        Some(serde_json::json!({ "second": true }))
    );
    for e in &mixed {
        let stored = store
            .reads()
            .get(&e.id, &Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e, &stored, "the answer for {} is the stored row", e.id);
    }
    assert_eq!(rows(&store).await, 6);
}

async fn one_bad_input_writes_nothing(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    let mut foreign = input("theirs", None);
    foreign.owner_id = "someone-else".into();
    store.runs().create(foreign, &Scope::All).await.unwrap();
    let batch = |bad: CreateExecution| {
        let mut inputs: Vec<CreateExecution> = (0..100)
            .map(|i| input(&format!("b{i}"), Some("root")))
            .collect();
        inputs[57] = bad;
        inputs
    };
    let unknown = store
        .runs()
        .create_many(batch(input("x", Some("no-such-parent"))), &Scope::All)
        .await;
    assert!(
        matches!(
            unknown,
            Err(StoreError::InvalidInput {
                field: "parentExecutionId",
                ..
            })
        ),
        "{unknown:?}"
    );
    let taken = store
        .runs()
        .create_many(batch(input("theirs", Some("root"))), &Scope::All)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let twice = store
        .runs()
        .create_many(batch(input("b3", Some("root"))), &Scope::All)
        .await;
    assert!(
        matches!(twice, Err(StoreError::InvalidInput { field: "id", .. })),
        "{twice:?}"
    );
    let mut not_mine = input("x", Some("root"));
    not_mine.owner_id = "mallory".into();
    let forbidden = store
        .runs()
        .create_many(
            batch(not_mine),
            &Scope::Owner(crate::fixtures::OWNER.into()),
        )
        .await;
    assert!(
        matches!(forbidden, Err(StoreError::Forbidden(_))),
        "{forbidden:?}"
    );
    let too_many: Vec<CreateExecution> = (0..execstore::store::limits::MAX_BATCH + 1)
        .map(|i| input(&format!("m{i}"), None))
        .collect();
    assert!(store
        .runs()
        .create_many(too_many, &Scope::All)
        .await
        .is_err());
    assert_eq!(rows(&store).await, 2, "nothing written by any of them");
}

async fn finish_and_extend_report_per_item(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for id in ["e1", "e2", "e3", "e4", "e5"] {
        create(&store, id, None).await;
    }
    for (id, worker) in [("e1", "a"), ("e2", "a"), ("e3", "a"), ("e4", "b")] {
        assert!(store
            .queue()
            .claim_execution(id, worker, 60_000)
            .await
            .unwrap()
            .acquired());
    }
    let b_claim = store
        .reads()
        .get_claim_for_execution("e4", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<String> = ["e1", "e2", "e3", "e4", "e5", "nope"]
        .map(String::from)
        .to_vec();
    let extended = store.queue().extend_many("a", ids, 600_000).await.unwrap();
    let got: Vec<(&str, bool)> = extended
        .iter()
        .map(|e| (e.execution_id.as_str(), e.expires_at.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            ("e1", true),
            ("e2", true),
            ("e3", true),
            ("e4", false),
            ("e5", false),
            ("nope", false)
        ]
    );
    let claim = store
        .reads()
        .get_claim_for_execution("e1", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(claim.expires_at), extended[0].expires_at);
    assert_eq!(
        store
            .reads()
            .get_claim_for_execution("e4", &Scope::All)
            .await
            .unwrap()
            .unwrap(),
        b_claim,
        "b's claim untouched"
    );

    let mut retry = finish("e2", "a", ExecutionStatus::Created);
    retry.error_message = Some("flaky".into());
    // Due again at once (a retry waits for its backoff otherwise).
    retry.retry_in_ms = Some(0);
    let mut failed = finish("e3", "a", ExecutionStatus::Failed);
    failed.error_message = Some("boom".into());
    failed.error_node_id = Some("n7".into());
    let outcomes = store
        .queue()
        .finish_many(vec![
            finish("e1", "a", ExecutionStatus::Completed),
            retry,
            failed,
            finish("e4", "a", ExecutionStatus::Completed),
            finish("e5", "a", ExecutionStatus::Completed),
            finish("nope", "a", ExecutionStatus::Completed),
        ])
        .await
        .unwrap();
    let got: Vec<(&str, Option<&str>)> = outcomes
        .iter()
        .map(|o| (o.execution_id.as_str(), o.refusal))
        .collect();
    assert_eq!(
        got,
        [
            ("e1", None),
            ("e2", None),
            ("e3", None),
            ("e4", Some("CONFLICT")),
            ("e5", Some("CONFLICT")),
            ("nope", Some("NOT_FOUND"))
        ]
    );
    let e1 = outcomes[0].execution.as_ref().unwrap();
    assert_eq!(e1.status, ExecutionStatus::Completed);
    assert!(e1.completed_at.is_some());
    let e2 = outcomes[1].execution.as_ref().unwrap();
    assert_eq!(
        (
            e2.status,
            e2.failure_count,
            e2.last_failure_reason.as_deref()
        ),
        (ExecutionStatus::Created, 1, Some("flaky"))
    );
    assert!(e2.processing_worker_id.is_none());
    let e3 = outcomes[2].execution.as_ref().unwrap();
    assert_eq!(
        (
            e3.status,
            e3.error_message.as_deref(),
            e3.error_node_id.as_deref()
        ),
        (ExecutionStatus::Failed, Some("boom"), Some("n7"))
    );
    for id in ["e1", "e2", "e3"] {
        let claim = store
            .reads()
            .get_claim_for_execution(id, &Scope::All)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            claim.status,
            execstore::store::ClaimStatus::Released,
            "{id}"
        );
    }
    // e2 went back to the queue, due now: behind e5, due since its creation;
    // e4 is still b's, unchanged.
    let pulled = store
        .queue()
        .claim_next_executions("c", 60_000, None, 10)
        .await
        .unwrap();
    let pulled: Vec<&str> = pulled.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(pulled, ["e5", "e2"]);
    assert_eq!(
        store
            .reads()
            .get_claim_for_execution("e4", &Scope::All)
            .await
            .unwrap()
            .unwrap(),
        b_claim
    );
    let e4 = store.reads().get("e4", &Scope::All).await.unwrap().unwrap();
    assert_eq!(e4.status, ExecutionStatus::Created);
    assert_eq!(e4.processing_worker_id.as_deref(), Some("b"));
}

/// 16 workers pull 50 at a time and finish each batch in one request: every
/// execution completed, exactly once.
async fn batched_rounds_complete_every_execution_once(backend: Backend) {
    const N: usize = 2000;
    let t = fresh(backend).await;
    let store = t.store();
    let inputs = (0..N).map(|i| input(&format!("job-{i}"), None)).collect();
    store.runs().create_many(inputs, &Scope::All).await.unwrap();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let mut done = Vec::new();
                loop {
                    let pulled = store
                        .queue()
                        .claim_next_executions(&worker, 60_000, None, 50)
                        .await
                        .unwrap();
                    if pulled.is_empty() {
                        return done;
                    }
                    let items = pulled
                        .iter()
                        .map(|e| finish(&e.id, &worker, ExecutionStatus::Completed))
                        .collect();
                    for outcome in store.queue().finish_many(items).await.unwrap() {
                        assert_eq!(outcome.refusal, None, "{}", outcome.execution_id);
                        done.push(outcome.execution_id);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    assert_eq!(all.len(), N, "every one finished once");
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), N);
    assert_eq!(count(&store, "WHERE status = 'completed'").await, N as i64);
}

crate::both_backends!(
    a_thousand_inputs_land_whole_and_in_order,
    a_batch_answers_what_it_stored,
    one_bad_input_writes_nothing,
    finish_and_extend_report_per_item,
    batched_rounds_complete_every_execution_once
);
