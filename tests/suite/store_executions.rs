use entity::{execution_claim, execution_recovery};
use execstore::store::{
    CreateExecution, ExecutionStatus, NewRecovery, Scope, StatusUpdate, StoreError,
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::fixtures::{create, input, OWNER};
use crate::harness::{fresh, Backend};

async fn create_derives_root_and_depth(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let root = store
        .runs()
        .create(
            CreateExecution {
                flow_id: "flow-1".into(),
                owner_id: OWNER.into(),
                ..Default::default()
            },
            &Scope::All,
        )
        .await
        .unwrap();
    // Generated ids are UUIDv7.
    let uuid = uuid::Uuid::parse_str(&root.id).expect("generated id is a uuid");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(root.root_execution_id, root.id);
    assert_eq!(root.execution_depth, 0);
    assert_eq!(root.parent_execution_id, None);
    assert_eq!(root.status, ExecutionStatus::Created);
    assert_eq!(root.failure_count, 0);

    let child = create(&store, "child", Some(&root.id)).await;
    let grandchild = create(&store, "grandchild", Some("child")).await;
    assert_eq!(child.root_execution_id, root.id);
    assert_eq!(child.execution_depth, 1);
    assert_eq!(grandchild.root_execution_id, root.id);
    assert_eq!(grandchild.parent_execution_id.as_deref(), Some("child"));
    assert_eq!(grandchild.execution_depth, 2);

    let read = store
        .reads()
        .get("grandchild", &Scope::All)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, grandchild);
    assert!(store
        .reads()
        .get("nope", &Scope::All)
        .await
        .unwrap()
        .is_none());
}

async fn create_rejects_unknown_parent_and_bad_ids(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let err = store
        .runs()
        .create(input("x", Some("missing")), &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "parentExecutionId",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        store.reads().get("x", &Scope::All).await.unwrap().is_none(),
        "nothing half-written"
    );

    let err = store
        .runs()
        .create(input("", None), &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { field: "id", .. }),
        "{err:?}"
    );
    let long = "x".repeat(256);
    let err = store
        .runs()
        .create(input(&long, None), &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput { field: "id", .. }),
        "{err:?}"
    );
    let ok = "é".repeat(127); // 254 bytes
    create(&store, &ok, None).await;
    let err = store
        .runs()
        .create(input("self", Some("self")), &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "parentExecutionId",
                ..
            }
        ),
        "{err:?}"
    );
}

async fn create_is_an_idempotent_upsert(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let mut first = input("e1", None);
    first.options = Some(json!({"a": 1}));
    let created = store.runs().create(first, &Scope::All).await.unwrap();

    let mut again = input("e1", None);
    again.options = Some(json!({"b": [1, 2]}));
    again.integration = Some(json!("slack"));
    again.status = Some(ExecutionStatus::Running);
    let updated = store.runs().create(again, &Scope::All).await.unwrap();
    assert_eq!(updated.id, "e1");
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(updated.options, Some(json!({"b": [1, 2]})));
    assert_eq!(updated.integration, Some(json!("slack")));
    assert_eq!(updated.status, ExecutionStatus::Running);
    assert!(updated.started_at.is_some());

    let mut stranger = input("e1", None);
    stranger.owner_id = "someone-else".into();
    let err = store
        .runs()
        .create(stranger, &Scope::All)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let after = store.reads().get("e1", &Scope::All).await.unwrap().unwrap();
    assert_eq!(after.owner_id, OWNER);
    assert_eq!(after.options, Some(json!({"b": [1, 2]})));
}

async fn update_status_applies_timestamp_defaults(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "e", None).await;

    let running = store
        .runs()
        .update_execution_status(
            StatusUpdate::new("e", ExecutionStatus::Running),
            &Scope::All,
        )
        .await
        .unwrap();
    assert_eq!(running.status, ExecutionStatus::Running);
    let started = running.started_at.expect("RUNNING sets startedAt");
    assert!(running.completed_at.is_none());

    let mut explicit = StatusUpdate::new("e", ExecutionStatus::Running);
    let at = crate::fixtures::ts(42);
    explicit.started_at = Some(at);
    let running = store
        .runs()
        .update_execution_status(explicit, &Scope::All)
        .await
        .unwrap();
    assert_eq!(running.started_at, Some(at), "an explicit startedAt wins");

    let mut failed = StatusUpdate::new("e", ExecutionStatus::Failed);
    failed.error_message = Some("boom".into());
    failed.error_node_id = Some("node-7".into());
    failed.failure_count = Some(2);
    let failed = store
        .runs()
        .update_execution_status(failed, &Scope::All)
        .await
        .unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert!(
        failed.completed_at.is_some(),
        "a terminal status sets completedAt"
    );
    assert_eq!(failed.error_message.as_deref(), Some("boom"));
    assert_eq!(failed.error_node_id.as_deref(), Some("node-7"));
    assert_eq!(failed.failure_count, 2);
    assert_eq!(failed.started_at, Some(at), "fields not given are kept");
    assert!(started <= failed.completed_at.unwrap());

    let mut done = StatusUpdate::new("e", ExecutionStatus::Completed);
    done.completed_at = Some(crate::fixtures::ts(99));
    let done = store
        .runs()
        .update_execution_status(done, &Scope::All)
        .await
        .unwrap();
    assert_eq!(done.completed_at, Some(crate::fixtures::ts(99)));

    let err = store
        .runs()
        .update_execution_status(
            StatusUpdate::new("absent", ExecutionStatus::Running),
            &Scope::All,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    // Timestamps are kept at microsecond precision on both backends: what is
    // returned is what a later read sees.
    let mut precise = StatusUpdate::new("e", ExecutionStatus::Paused);
    precise.started_at = chrono::DateTime::from_timestamp(1_760_000_000, 123_456_789);
    let paused = store
        .runs()
        .update_execution_status(precise, &Scope::All)
        .await
        .unwrap();
    let micros = chrono::DateTime::from_timestamp(1_760_000_000, 123_456_000);
    assert_eq!(paused.started_at, micros);
    assert_eq!(
        store
            .reads()
            .get("e", &Scope::All)
            .await
            .unwrap()
            .unwrap()
            .started_at,
        micros
    );

    let mut bad = StatusUpdate::new("e", ExecutionStatus::Running);
    bad.failure_count = Some(-1);
    let err = store
        .runs()
        .update_execution_status(bad, &Scope::All)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidInput {
                field: "failureCount",
                ..
            }
        ),
        "{err:?}"
    );
}

async fn delete_removes_subtree_with_claims_and_recovery(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    create(&store, "a", Some("root")).await;
    create(&store, "a1", Some("a")).await;
    create(&store, "a11", Some("a1")).await;
    create(&store, "b", Some("root")).await;
    assert!(store
        .queue()
        .claim_execution("a11", "w1", 60_000)
        .await
        .unwrap()
        .acquired());
    assert!(store
        .queue()
        .claim_execution("b", "w1", 60_000)
        .await
        .unwrap()
        .acquired());
    store
        .queue()
        .record_recovery(NewRecovery {
            execution_id: "a1".into(),
            worker_id: "w2".into(),
            reason: "crashed".into(),
            previous_status: Some("running".into()),
            previous_worker_id: Some("w1".into()),
        })
        .await
        .unwrap();

    assert!(store.runs().delete("a", &Scope::All).await.unwrap());
    for gone in ["a", "a1", "a11"] {
        assert!(
            store
                .reads()
                .get(gone, &Scope::All)
                .await
                .unwrap()
                .is_none(),
            "{gone} deleted"
        );
    }
    assert!(store
        .reads()
        .get("root", &Scope::All)
        .await
        .unwrap()
        .is_some());
    assert!(store.reads().get("b", &Scope::All).await.unwrap().is_some());
    assert_eq!(
        execution_claim::Entity::find().count(&t.db).await.unwrap(),
        1,
        "only b's claim is left"
    );
    assert_eq!(
        execution_recovery::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        0
    );
    assert!(
        !store.runs().delete("a", &Scope::All).await.unwrap(),
        "second delete finds nothing"
    );

    assert!(store.runs().delete("root", &Scope::All).await.unwrap());
    assert_eq!(
        entity::execution::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        execution_claim::Entity::find().count(&t.db).await.unwrap(),
        0
    );
}

async fn update_failure_info_sets_reason_and_time(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "e", None).await;
    assert!(store
        .runs()
        .update_failure_info("e", 3, "timeout", &Scope::All)
        .await
        .unwrap());
    let e = store.reads().get("e", &Scope::All).await.unwrap().unwrap();
    assert_eq!(e.failure_count, 3);
    assert_eq!(e.last_failure_reason.as_deref(), Some("timeout"));
    assert!(e.last_failure_at.is_some());
    assert!(!store
        .runs()
        .update_failure_info("absent", 1, "x", &Scope::All)
        .await
        .unwrap());
    let err = store
        .runs()
        .update_failure_info("e", -1, "x", &Scope::All)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput {
            field: "failureCount",
            ..
        }
    ));
}

async fn owner_scope_hides_other_owners(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "mine", None).await;
    let mut other = input("theirs", None);
    other.owner_id = "owner-2".into();
    store.runs().create(other, &Scope::All).await.unwrap();
    let me = Scope::Owner(OWNER.into());
    assert!(store.reads().get("mine", &me).await.unwrap().is_some());
    assert!(store.reads().get("theirs", &me).await.unwrap().is_none());
    assert!(!store.runs().delete("theirs", &me).await.unwrap());
    assert!(store
        .reads()
        .get("theirs", &Scope::All)
        .await
        .unwrap()
        .is_some());
    let err = store
        .runs()
        .update_execution_status(StatusUpdate::new("theirs", ExecutionStatus::Running), &me)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    // A child under another owner's execution: that parent does not exist for me.
    let err = store
        .runs()
        .create(input("c", Some("theirs")), &me)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput {
            field: "parentExecutionId",
            ..
        }
    ));
    let mut forged = input("forged", None);
    forged.owner_id = "owner-2".into();
    assert!(matches!(
        store.runs().create(forged, &me).await.unwrap_err(),
        StoreError::Forbidden(_)
    ));
    assert_eq!(
        store
            .reads()
            .get_many(&["mine".into(), "theirs".into()], &me)
            .await
            .unwrap()
            .len(),
        1
    );
}

crate::both_backends!(
    create_derives_root_and_depth,
    create_rejects_unknown_parent_and_bad_ids,
    create_is_an_idempotent_upsert,
    update_status_applies_timestamp_defaults,
    delete_removes_subtree_with_claims_and_recovery,
    update_failure_info_sets_reason_and_time,
    owner_scope_hides_other_owners,
);

/// Durable by default: every pooled SQLite connection runs with
/// `synchronous=FULL` (2) unless the operator chooses NORMAL (1).
#[tokio::test]
async fn sqlite_syncs_every_commit_unless_told_otherwise() {
    use execstore::store::{DbOptions, SqliteSync};
    use sea_orm::{ConnectionTrait, Statement};
    assert_eq!(
        execstore::config::Config::defaults()
            .db_options()
            .sqlite_sync,
        SqliteSync::Full
    );
    for (sync, expected) in [(SqliteSync::Full, 2i64), (SqliteSync::Normal, 1)] {
        let (url, _dir) = crate::harness::empty(Backend::Sqlite).await;
        let options = DbOptions {
            max_connections: 3,
            sqlite_sync: sync,
            ..DbOptions::default()
        };
        let db = execstore::store::connect(&url, &options).await.unwrap();
        // Several connections at once, so more than the first one is asked.
        let reads = (0..3).map(|_| {
            db.query_one(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA synchronous",
            ))
        });
        for row in futures_util::future::join_all(reads).await {
            let value: i64 = row.unwrap().unwrap().try_get_by_index(0).unwrap();
            assert_eq!(value, expected, "{sync:?}");
        }
    }
}
