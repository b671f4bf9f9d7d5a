//! Reads off a real streaming standby (`pg_basebackup -R` on loopback):
//! queries are served by it, a consistency token reads its own write while
//! the standby's replay is paused, no read is staler than the lag bound, and
//! reads go on (no failed request) with the standby stopped and come back to
//! it after its restart.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use execstore::config::Config;
use execstore::store::{self, DbOptions, ExecutionStore, Standbys};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{json, Value};
use testkit::throwaway_pg::Cluster;
use tower::ServiceExt;

const MAX_LAG: Duration = Duration::from_millis(500);

struct Answer {
    body: Value,
    token: Option<String>,
}

async fn post(router: &axum::Router, query: &str, token: Option<&str>) -> Answer {
    let mut request = Request::post("/graphql").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("x-execstore-consistency", token);
    }
    let body = json!({ "query": query }).to_string();
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let token = response
        .headers()
        .get("x-execstore-consistency")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        body: serde_json::from_slice(&bytes).unwrap(),
        token,
    }
}

/// Transactions the standby's database has committed (its own statistics).
async fn standby_transactions(standby: &DatabaseConnection) -> i64 {
    let row = standby
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT CAST(xact_commit AS BIGINT) AS n FROM pg_stat_database WHERE datname = 'app'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Waits (bounded) until the standby's statistics show `more` transactions
/// beyond `before` (statistics are flushed about once a second).
async fn standby_served(standby: &DatabaseConnection, before: i64, more: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if standby_transactions(standby).await - before >= more {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn standby_answers(store: &ExecutionStore) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let lags = store.standbys().unwrap().lags();
        if lags
            .iter()
            .all(|(_, lag)| lag.is_some_and(|l| l <= MAX_LAG))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the standby never became usable");
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_reads_from_a_standby_with_read_your_writes() {
    let primary = Cluster::start(&[("fsync", "off"), ("max_connections", "100")])
        .expect("a primary for the standby test");
    let admin = Database::connect(primary.url("postgres")).await.unwrap();
    exec(&admin, "CREATE DATABASE app").await;
    admin.close().await.unwrap();
    let options = DbOptions {
        max_connections: 8,
        ..DbOptions::default()
    };
    let db = store::connect(&primary.url("app"), &options).await.unwrap();
    let standby = primary.start_standby().expect("a streaming standby");
    let standby_db = Database::connect(standby.url("app")).await.unwrap();
    let standbys = Standbys::connect(&[standby.url("app")], &options, MAX_LAG).unwrap();
    let store = ExecutionStore::new(db).with_standbys(standbys);
    let router = execstore::http::router(store.clone(), &Config::defaults()).unwrap();

    // A write answers with a token, in the header and in `extensions`.
    let created = post(
        &router,
        "mutation { createExecution(input: { id: \"root\", flowId: \"f\", ownerId: \"o\" }) { id } }",
        None,
    )
    .await;
    let token = created.token.clone().expect("a consistency token");
    assert_eq!(created.body["extensions"]["consistency"], token.as_str());
    standby_answers(&store).await;

    // Queries are served by the standby.
    let before = standby_transactions(&standby_db).await;
    for _ in 0..30 {
        let answer = post(
            &router,
            "{ execution(id: \"root\") { id children { id } } }",
            Some(&token),
        )
        .await;
        assert_eq!(
            answer.body["data"]["execution"]["id"], "root",
            "{}",
            answer.body
        );
    }
    assert!(
        standby_served(&standby_db, before, 30).await,
        "the standby served the queries"
    );

    // Replay paused: a write's token still reads it (bounded wait, then the
    // primary); without a token, no answer is staler than the bound.
    exec(&standby_db, "SELECT pg_wal_replay_pause()").await;
    let written = Instant::now();
    let created = post(
        &router,
        "mutation { createExecution(input: { id: \"late\", flowId: \"f\", ownerId: \"o\", parentExecutionId: \"root\" }) { id } }",
        None,
    )
    .await;
    let token = created.token.expect("token");
    let mine = post(&router, "{ execution(id: \"late\") { id } }", Some(&token)).await;
    assert_eq!(
        mine.body["data"]["execution"]["id"], "late",
        "read your write"
    );
    let seen_after = loop {
        let answer = post(&router, "{ execution(id: \"late\") { id } }", None).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        if answer.body["data"]["execution"]["id"] == "late" {
            break written.elapsed();
        }
        assert!(
            written.elapsed() < Duration::from_secs(10),
            "a read stayed stale for 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        seen_after <= MAX_LAG + Duration::from_millis(400),
        "stale for {seen_after:?} (bound {MAX_LAG:?})"
    );
    exec(&standby_db, "SELECT pg_wal_replay_resume()").await;
    standby_answers(&store).await;

    // The standby stops: reads go on from the primary, none fails; it
    // restarts: reads return to it.
    drop(standby_db);
    standby.stop().unwrap();
    for i in 0..40 {
        let answer = post(
            &router,
            "{ execution(id: \"root\") { id childCount } }",
            None,
        )
        .await;
        assert!(
            answer.body.get("errors").is_none(),
            "read {i}: {}",
            answer.body
        );
        assert_eq!(answer.body["data"]["execution"]["childCount"], 1);
    }
    standby.spawn().unwrap();
    standby_answers(&store).await;
    let standby_db = Database::connect(standby.url("app")).await.unwrap();
    let before = standby_transactions(&standby_db).await;
    for _ in 0..30 {
        let answer = post(&router, "{ execution(id: \"root\") { id } }", None).await;
        assert_eq!(answer.body["data"]["execution"]["id"], "root");
    }
    assert!(
        standby_served(&standby_db, before, 30).await,
        "reads came back to the standby"
    );
    // A malformed token is refused, not ignored.
    let bad = post(
        &router,
        "{ execution(id: \"root\") { id } }",
        Some("not-hex"),
    )
    .await;
    assert_eq!(
        bad.body["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
}
