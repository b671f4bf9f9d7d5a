use chrono::Duration;
use entity::execution;
use execstore::store::{ExecutionStatus, NewRecovery, Scope, StatusUpdate, StoreError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::fixtures::{create, create_with_status};
use crate::harness::{fresh, Backend};

async fn executions_needing_recovery(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let ids = |v: Vec<execstore::store::Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    // 1. CREATED, no failures, no live claim.
    create(&store, "fresh", None).await;
    create(&store, "fresh-claimed", None).await;
    store
        .queue()
        .claim_execution("fresh-claimed", "w", 600_000)
        .await
        .unwrap();
    // 2. RUNNING without a live claim.
    create_with_status(&store, "running-orphan", None, ExecutionStatus::Running).await;
    create_with_status(&store, "running-held", None, ExecutionStatus::Running).await;
    store
        .queue()
        .claim_execution("running-held", "w", 600_000)
        .await
        .unwrap();
    create_with_status(&store, "running-crashed", None, ExecutionStatus::Running).await;
    store
        .queue()
        .claim_execution("running-crashed", "w", 600_000)
        .await
        .unwrap();
    create_with_status(&store, "running-released", None, ExecutionStatus::Running).await;
    store
        .queue()
        .claim_execution("running-released", "w", 600_000)
        .await
        .unwrap();
    store
        .queue()
        .release_execution("running-released", "w")
        .await
        .unwrap();
    // 3. CREATED with a few failures whose retry is due (its due time
    // passed) — recovery's rule is the queue's; a count reaching the
    // attempts (5 by default) ended it FAILED.
    for (id, count, minutes_ago) in [
        ("retry-old", 2, 5),
        ("retry-recent", 2, 0),
        ("retry-exhausted", 5, 5),
    ] {
        create(&store, id, None).await;
        store
            .runs()
            .update_failure_info(id, count, "boom", &Scope::All)
            .await
            .unwrap();
        if minutes_ago > 0 {
            // Time travel: the failure, and the retry's due time, are long past.
            let then = execstore::store::now() - Duration::minutes(minutes_ago);
            execution::Entity::update_many()
                .col_expr(execution::Column::LastFailureAt, Expr::value(then))
                .col_expr(execution::Column::RunAt, Expr::value(then))
                .col_expr(execution::Column::LeaseExpiresAt, Expr::value(then))
                .filter(execution::Column::Id.eq(id))
                .filter(execution::Column::Status.eq(ExecutionStatus::Created))
                .exec(&t.db)
                .await
                .unwrap();
        }
    }
    create_with_status(&store, "done", None, ExecutionStatus::Completed).await;
    create_with_status(&store, "paused", None, ExecutionStatus::Paused).await;

    let mut found = ids(store
        .queue()
        .get_executions_needing_recovery(1000, &Scope::All)
        .await
        .unwrap());
    found.sort();
    assert_eq!(
        found,
        vec!["fresh", "retry-old", "running-orphan", "running-released"]
    );

    // The crashed worker's lease runs out, expireOldClaims marks it expired:
    // (fix) it must still be found.
    crate::fixtures::expire_lease(&t.db, "running-crashed").await;
    let found = ids(store
        .queue()
        .get_executions_needing_recovery(1000, &Scope::All)
        .await
        .unwrap());
    assert!(
        found.contains(&"running-crashed".to_owned()),
        "active past expiry"
    );
    assert_eq!(store.queue().expire_old_claims().await.unwrap(), 1);
    let found = ids(store
        .queue()
        .get_executions_needing_recovery(1000, &Scope::All)
        .await
        .unwrap());
    assert!(
        found.contains(&"running-crashed".to_owned()),
        "still found after expireOldClaims"
    );
    assert_eq!(
        store
            .queue()
            .get_executions_needing_recovery(2, &Scope::All)
            .await
            .unwrap()
            .len(),
        2
    );
    let err = store
        .queue()
        .get_executions_needing_recovery(0, &Scope::All)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput { field: "limit", .. }
    ));
    store
        .runs()
        .update_execution_status(
            StatusUpdate::new("running-crashed", ExecutionStatus::Completed),
            &Scope::All,
        )
        .await
        .unwrap();
    let found = ids(store
        .queue()
        .get_executions_needing_recovery(1000, &Scope::All)
        .await
        .unwrap());
    assert!(!found.contains(&"running-crashed".to_owned()));
}

async fn recovery_history_newest_first(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "e", None).await;
    for n in 0..3 {
        let row = store
            .queue()
            .record_recovery(NewRecovery {
                execution_id: "e".into(),
                worker_id: format!("rw{n}"),
                reason: format!("reason {n}"),
                previous_status: Some("running".into()),
                previous_worker_id: Some(format!("dead{n}")),
            })
            .await
            .unwrap();
        assert_eq!(row.recovered_by_worker, format!("rw{n}"));
        assert_eq!(row.previous_worker_id, Some(format!("dead{n}")));
    }
    let history = store
        .reads()
        .get_recovery_history("e", &Scope::All)
        .await
        .unwrap();
    let workers: Vec<_> = history
        .iter()
        .map(|r| r.recovered_by_worker.as_str())
        .collect();
    assert_eq!(workers, vec!["rw2", "rw1", "rw0"]);
    assert!(store
        .reads()
        .get_recovery_history("e", &Scope::Owner("x".into()))
        .await
        .unwrap()
        .is_empty());
    let err = store
        .queue()
        .record_recovery(NewRecovery {
            execution_id: "absent".into(),
            worker_id: "w".into(),
            reason: "r".into(),
            previous_status: None,
            previous_worker_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

crate::both_backends!(executions_needing_recovery, recovery_history_newest_first);
