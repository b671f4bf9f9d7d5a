//! Time in the queue: an execution's due time (`runAt`), priorities, and
//! retries that back off and end. Waits are the store's own (a worker
//! waiting with `waitMs`, woken by the due timer), never sleeps of the test.

use std::time::Duration;

use chrono::Utc;
use execstore::store::{
    now, CreateExecution, Execution, ExecutionStatus, ExecutionStore, RetryPolicy, Scope,
    StatusUpdate, StoreError,
};
use serde_json::json;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::fixtures::{finish, input};
use crate::harness::{fresh, Backend};

async fn create(store: &ExecutionStore, input: CreateExecution) -> Execution {
    store.runs().create(input, &Scope::All).await.unwrap()
}

/// Pulls up to `limit`, waiting up to `wait` for work.
async fn pull(store: &ExecutionStore, limit: i64, wait: Duration) -> Vec<String> {
    store
        .queue()
        .claim_next_executions_waiting("w", 60_000, None, limit, wait)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

/// Not handed out before its `runAt`; a worker waiting for work gets it when
/// it is due, woken by the due timer (nothing else is written meanwhile).
async fn not_handed_out_before_run_at(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let due = now() + chrono::Duration::milliseconds(400);
    let mut later = input("later", None);
    later.run_at = Some(due);
    let created = create(&store, later).await;
    assert_eq!(created.due_at(), due);
    assert!(
        pull(&store, 1, Duration::ZERO).await.is_empty(),
        "not due yet"
    );
    let got = pull(&store, 1, Duration::from_secs(10)).await;
    let at = Utc::now();
    assert_eq!(got, ["later"], "handed out once due");
    assert!(
        at >= due,
        "handed out {} ms early",
        (due - at).num_milliseconds()
    );
    assert!(
        at - due < chrono::Duration::seconds(2),
        "handed out {} ms late",
        (at - due).num_milliseconds()
    );
    // An execution due in the past is due now.
    let mut past = input("past", None);
    past.run_at = Some(now() - chrono::Duration::hours(1));
    create(&store, past).await;
    assert_eq!(pull(&store, 1, Duration::ZERO).await, ["past"]);
}

/// A pull hands out the highest priority first, then by due time, then id;
/// one not due yet waits whatever its priority.
async fn priority_then_due_time_then_id(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for id in ["a", "b"] {
        create(&store, input(id, None)).await;
    }
    let mut early = input("early", None);
    early.run_at = Some(now() - chrono::Duration::minutes(5));
    create(&store, early).await;
    let mut urgent = input("urgent", None);
    urgent.priority = Some(10);
    create(&store, urgent).await;
    let mut urgent_later = input("urgent-later", None);
    urgent_later.priority = Some(50);
    urgent_later.run_at = Some(now() + chrono::Duration::hours(1));
    create(&store, urgent_later).await;
    let mut low = input("low", None);
    low.priority = Some(-1);
    create(&store, low).await;
    assert_eq!(
        pull(&store, 10, Duration::ZERO).await,
        ["urgent", "early", "a", "b", "low"]
    );
    let stored = store
        .reads()
        .get("urgent", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.priority, 10);
    for bad in [101, -101] {
        let mut wrong = input("wrong", None);
        wrong.priority = Some(bad);
        let err = store.runs().create(wrong, &Scope::All).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidInput {
                    field: "priority",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

/// A poison execution is tried exactly `maxAttempts` times, each retry
/// waiting longer than the one before, then ends FAILED and is never handed
/// out again.
async fn poison_execution_ends_after_its_attempts(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let mut poison = input("poison", None);
    poison.options =
        Some(json!({ "retry": { "maxAttempts": 4, "backoffMs": 60, "maxBackoffMs": 10_000 } }));
    create(&store, poison).await;
    let mut tries = 0;
    let mut gaps = Vec::new();
    let last = loop {
        let got = pull(&store, 1, Duration::from_secs(10)).await;
        assert_eq!(got, ["poison"], "try {}", tries + 1);
        tries += 1;
        let mut failed = finish("poison", "w", ExecutionStatus::Created);
        failed.error_message = Some(format!("boom {tries}"));
        let at = now();
        let after = store.queue().finish_execution(failed).await.unwrap();
        if after.status != ExecutionStatus::Created {
            break after;
        }
        assert_eq!(after.failure_count, tries);
        gaps.push((after.due_at() - at).num_milliseconds());
    };
    assert_eq!(tries, 4, "tried maxAttempts times");
    assert_eq!(last.status, ExecutionStatus::Failed);
    assert_eq!(last.failure_count, 4);
    assert!(last.completed_at.is_some());
    assert_eq!(last.last_failure_reason.as_deref(), Some("boom 4"));
    assert!(
        last.error_message
            .as_deref()
            .unwrap_or("")
            .contains("attempts"),
        "{:?}",
        last.error_message
    );
    assert_eq!(gaps.len(), 3);
    for (i, gap) in gaps.iter().enumerate() {
        // 60 ms × 2^i, within ±25 % (and the store's rounding).
        let expected = 60.0 * 2f64.powi(i as i32);
        assert!(
            (*gap as f64) >= expected * 0.75 - 1.0 && (*gap as f64) <= expected * 1.25 + 1.0,
            "gap {i}: {gap} ms, expected about {expected}"
        );
    }
    assert!(
        gaps.windows(2).all(|w| w[0] < w[1]),
        "growing gaps: {gaps:?}"
    );
    assert!(
        pull(&store, 1, Duration::from_millis(300)).await.is_empty(),
        "never handed out again"
    );
}

/// `retryInMs` overrides the backoff of one retry; the default policy (a
/// minute) keeps a plain retry out of the queue.
async fn retry_in_ms_overrides_the_backoff(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, input("r", None)).await;
    assert_eq!(pull(&store, 1, Duration::ZERO).await, ["r"]);
    let after = store
        .queue()
        .finish_execution(finish("r", "w", ExecutionStatus::Created))
        .await
        .unwrap();
    let wait = after.due_at() - now();
    assert!(
        wait > chrono::Duration::seconds(40) && wait < chrono::Duration::seconds(80),
        "a minute's backoff, ±25 %: {wait:?}"
    );
    assert!(
        pull(&store, 1, Duration::ZERO).await.is_empty(),
        "backing off"
    );
    // The same execution claimed by id (it is not handed out by pulls) and
    // retried in 150 ms.
    assert!(store
        .queue()
        .claim_execution("r", "w", 60_000)
        .await
        .unwrap()
        .acquired());
    let mut soon = finish("r", "w", ExecutionStatus::Created);
    soon.retry_in_ms = Some(150);
    let at = now();
    let after = store.queue().finish_execution(soon).await.unwrap();
    assert_eq!((after.due_at() - at).num_milliseconds(), 150);
    assert_eq!(pull(&store, 1, Duration::from_secs(10)).await, ["r"]);
    assert!(Utc::now() >= after.due_at());
    let mut negative = finish("r", "w", ExecutionStatus::Created);
    negative.retry_in_ms = Some(-1);
    let err = store.queue().finish_execution(negative).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "retryInMs",
                ..
            }
        ),
        "{err:?}"
    );
}

/// `options.retry` is checked when an execution is created.
async fn retry_options_are_checked(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    for bad in [
        json!({ "retry": "often" }),
        json!({ "retry": { "maxAttempts": "5" } }),
        json!({ "retry": { "maxAttempts": 0 } }),
        json!({ "retry": { "backoffMs": -5 } }),
        json!({ "retry": { "maxBackoff": 5 } }),
    ] {
        let mut wrong = input("wrong", None);
        wrong.options = Some(bad.clone());
        let err = store.runs().create(wrong, &Scope::All).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::InvalidInput {
                    field: "options.retry",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        let batch = store
            .runs()
            .create_many(
                vec![input("fine", None), {
                    let mut i = input("wrong", None);
                    i.options = Some(bad.clone());
                    i
                }],
                &Scope::All,
            )
            .await;
        assert!(batch.is_err(), "{bad}: the whole batch is refused");
    }
    assert!(store
        .reads()
        .get("fine", &Scope::All)
        .await
        .unwrap()
        .is_none());
    let mut good = input("good", None);
    good.options = Some(json!({ "retry": { "maxAttempts": 2, "backoffMs": 10 }, "other": true }));
    create(&store, good).await;
}

/// Recovery uses the queue's rule: a retry waiting out its backoff is not
/// stuck; once due it needs recovery; recovery putting an execution back
/// (counting a failure) moves its due time by the backoff, and the count
/// that reaches the attempts ends it FAILED.
async fn recovery_agrees_with_the_queue(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store().with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(200),
        ..RetryPolicy::default()
    });
    let needing = |store: ExecutionStore| async move {
        let mut ids: Vec<String> = store
            .queue()
            .get_executions_needing_recovery(100, &Scope::All)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        ids.sort();
        ids
    };
    create(&store, input("r", None)).await;
    assert_eq!(pull(&store, 1, Duration::ZERO).await, ["r"]);
    store
        .queue()
        .finish_execution(finish("r", "w", ExecutionStatus::Created))
        .await
        .unwrap();
    assert!(
        needing(store.clone()).await.is_empty(),
        "backing off: not stuck"
    );
    // Time travel: its backoff is over. Due, not pulled: it needs recovery.
    let then = now() - chrono::Duration::seconds(1);
    entity::execution::Entity::update_many()
        .col_expr(entity::execution::Column::RunAt, Expr::value(then))
        .col_expr(entity::execution::Column::LeaseExpiresAt, Expr::value(then))
        .filter(entity::execution::Column::Id.eq("r"))
        .exec(&t.db)
        .await
        .unwrap();
    assert_eq!(needing(store.clone()).await, ["r"]);

    // Recovery puts a RUNNING execution whose worker died back, counting a
    // failure: it waits out its backoff, then the count that reaches the
    // attempts ends it.
    let mut running = input("dead", None);
    running.status = Some(ExecutionStatus::Running);
    create(&store, running).await;
    let mut back = StatusUpdate::new("dead", ExecutionStatus::Created);
    back.failure_count = Some(1);
    let put_back = store
        .runs()
        .update_execution_status(back, &Scope::All)
        .await
        .unwrap();
    assert_eq!(put_back.status, ExecutionStatus::Created);
    assert!(put_back.due_at() > now(), "waits out its backoff");
    assert!(!needing(store.clone()).await.contains(&"dead".to_owned()));
    assert!(store
        .runs()
        .update_failure_info("dead", 3, "crashed again", &Scope::All)
        .await
        .unwrap());
    let ended = store
        .reads()
        .get("dead", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, ExecutionStatus::Failed);
    assert!(ended.completed_at.is_some());
    assert!(!needing(store.clone()).await.contains(&"dead".to_owned()));
}

/// Through the API: `runAt` and `priority` at create and on `Execution`,
/// `retryInMs` on a finish, and their checks coded `BAD_USER_INPUT`.
async fn time_through_the_api(backend: Backend) {
    let api = crate::api_support::Api::new(backend).await;
    let later = (now() + chrono::Duration::hours(1)).to_rfc3339();
    let data = api
        .ok(
            "mutation($at: DateTime) {
               later: createExecution(input: { id: \"later\", flowId: \"f\", ownerId: \"o\", runAt: $at, priority: 7 }) { id runAt priority }
               now: createExecution(input: { id: \"now\", flowId: \"f\", ownerId: \"o\" }) { id runAt createdAt priority }
             }",
            json!({ "at": later }),
        )
        .await;
    assert_eq!(data["later"]["priority"], 7);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(data["later"]["runAt"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&later).unwrap()
    );
    assert_eq!(
        data["now"]["runAt"], data["now"]["createdAt"],
        "due at its creation"
    );
    assert_eq!(data["now"]["priority"], 0);
    let pulled = api
        .ok(
            "mutation { claimNextExecutions(workerId: \"w\", timeoutMs: 60000, limit: 5) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(pulled["claimNextExecutions"], json!([{ "id": "now" }]));
    let data = api
        .ok(
            "mutation { finishExecution(input: { executionId: \"now\", workerId: \"w\", status: CREATED, retryInMs: 0 }) { status failureCount runAt } }",
            json!({}),
        )
        .await;
    assert_eq!(data["finishExecution"]["status"], "CREATED");
    assert_eq!(data["finishExecution"]["failureCount"], 1);
    for bad in [
        "mutation { createExecution(input: { flowId: \"f\", ownerId: \"o\", priority: 500 }) { id } }",
        "mutation { createExecution(input: { flowId: \"f\", ownerId: \"o\", options: { retry: { maxAttempts: \"x\" } } }) { id } }",
        "mutation { finishExecution(input: { executionId: \"now\", workerId: \"w\", status: CREATED, retryInMs: -1 }) { id } }",
    ] {
        assert_eq!(api.error_code(bad, json!({})).await, "BAD_USER_INPUT", "{bad}");
    }
}

/// A database made before due times and priorities migrates: its
/// executions are due at their creation, of priority 0, and in the queue.
async fn an_old_database_migrates(backend: Backend) {
    let at = "'2026-01-01T00:00:00+00:00'";
    let insert = format!(
        "INSERT INTO executions (id, flow_id, owner_id, root_execution_id, status, execution_depth, \
         created_at, updated_at, failure_count) VALUES ('old', 'f', 'o', 'old', 'created', 0, {at}, {at}, 0)"
    );
    let (store, _dir) = crate::harness::old_database(backend, 11, &[insert]).await;
    let row = store
        .reads()
        .get("old", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.due_at(), row.priority), (row.created_at, 0));
    assert_eq!(pull(&store, 1, Duration::ZERO).await, ["old"]);
}

crate::both_backends!(
    not_handed_out_before_run_at,
    priority_then_due_time_then_id,
    poison_execution_ends_after_its_attempts,
    retry_in_ms_overrides_the_backoff,
    retry_options_are_checked,
    recovery_agrees_with_the_queue,
    time_through_the_api,
    an_old_database_migrates,
);
