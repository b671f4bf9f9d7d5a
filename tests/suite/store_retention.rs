//! Run retention: an old finished run goes, with its claims and recovery
//! history; a finished root with unfinished work below, a claimed node, a
//! running run and a just-finished run stay.

use chrono::{Duration, Utc};
use entity::execution;
use execstore::store::{
    ExecutionStatus, ExecutionStore, Finish, JanitorSettings, NewRecovery, RunsDeleted, Scope,
    StatusUpdate,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::fixtures::{create_with_status, input};
use crate::harness::{fresh, Backend};

/// Test-only time travel: these executions finished `days` ago.
async fn finished_days_ago(db: &DatabaseConnection, ids: &[&str], days: i64) {
    execution::Entity::update_many()
        .col_expr(
            execution::Column::CompletedAt,
            Expr::value(Utc::now() - Duration::days(days)),
        )
        .filter(execution::Column::Id.is_in(ids.iter().map(|s| s.to_string())))
        .exec(db)
        .await
        .expect("set completed_at");
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn finished_child(store: &ExecutionStore, id: &str, parent: &str) {
    let mut i = input(id, Some(parent));
    i.status = Some(ExecutionStatus::Created);
    store.runs().create(i, &Scope::All).await.unwrap();
    assert!(store
        .queue()
        .claim_execution(id, "w", 60_000)
        .await
        .unwrap()
        .acquired());
    store
        .queue()
        .finish_execution(Finish {
            execution_id: id.into(),
            worker_id: "w".into(),
            status: ExecutionStatus::Completed,
            error_message: None,
            error_node_id: None,
            failure_reason: None,
            retry_in_ms: None,
        })
        .await
        .unwrap();
}

async fn old_finished_runs_go_and_the_rest_stay(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let c = ExecutionStatus::Completed;
    // The run that goes: finished, its nodes finished, a released claim and
    // a recovery on record.
    create_with_status(&store, "old", None, c).await;
    create_with_status(&store, "old.a", Some("old"), ExecutionStatus::Failed).await;
    finished_child(&store, "old.b", "old").await;
    finished_child(&store, "old.b.1", "old.b").await;
    store
        .queue()
        .record_recovery(NewRecovery {
            execution_id: "old.a".into(),
            worker_id: "r".into(),
            reason: "lost".into(),
            previous_status: None,
            previous_worker_id: None,
        })
        .await
        .unwrap();
    // Finished long ago, but something below still runs.
    create_with_status(&store, "busy", None, c).await;
    create_with_status(&store, "busy.a", Some("busy"), ExecutionStatus::Running).await;
    // Finished long ago, but a node below holds a live claim.
    create_with_status(&store, "claimed", None, c).await;
    create_with_status(
        &store,
        "claimed.a",
        Some("claimed"),
        ExecutionStatus::Created,
    )
    .await;
    assert!(store
        .queue()
        .claim_execution("claimed.a", "w", 600_000)
        .await
        .unwrap()
        .acquired());
    store
        .runs()
        .update_execution_status(StatusUpdate::new("claimed.a", c), &Scope::All)
        .await
        .unwrap();
    // Still running; and just finished.
    create_with_status(&store, "running", None, ExecutionStatus::Running).await;
    create_with_status(&store, "fresh", None, c).await;
    finished_days_ago(&t.db, &["old", "busy", "claimed"], 10).await;
    let claims_before = count(&t.db, "execution_claims").await;

    let deleted = store
        .runs()
        .delete_finished_runs(execstore::store::now() - Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!(
        deleted,
        RunsDeleted {
            runs: 1,
            executions: 4
        }
    );
    for gone in ["old", "old.a", "old.b", "old.b.1"] {
        assert!(
            store
                .reads()
                .get(gone, &Scope::All)
                .await
                .unwrap()
                .is_none(),
            "{gone}"
        );
    }
    for kept in ["busy", "busy.a", "claimed", "claimed.a", "running", "fresh"] {
        assert!(
            store
                .reads()
                .get(kept, &Scope::All)
                .await
                .unwrap()
                .is_some(),
            "{kept}"
        );
    }
    assert_eq!(
        count(&t.db, "execution_recovery").await,
        0,
        "history went too"
    );
    assert_eq!(
        count(&t.db, "execution_claims").await,
        claims_before - 2,
        "old.b's and old.b.1's claims went, claimed.a's stays"
    );

    // The janitor: without run retention nothing goes; with it, a run whose
    // last work finished becomes eligible.
    store
        .runs()
        .update_execution_status(StatusUpdate::new("busy.a", c), &Scope::All)
        .await
        .unwrap();
    let mut settings = JanitorSettings {
        interval: std::time::Duration::from_secs(60),
        event_retention: std::time::Duration::from_secs(86_400),
        run_retention: None,
    };
    assert_eq!(
        store.janitor().round(&settings).await.unwrap().runs_deleted,
        0
    );
    settings.run_retention = Some(std::time::Duration::from_secs(86_400));
    let report = store.janitor().round(&settings).await.unwrap();
    assert_eq!((report.runs_deleted, report.executions_deleted), (1, 2));
    assert!(store
        .reads()
        .get("busy", &Scope::All)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .reads()
        .get("claimed", &Scope::All)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .reads()
        .get("fresh", &Scope::All)
        .await
        .unwrap()
        .is_some());
}

crate::both_backends!(old_finished_runs_go_and_the_rest_stay);
