//! The event log and its subscribers: every write logged with its change,
//! resumable cursors, catching up instead of skipping, expiry, and (on
//! PostgreSQL) delivery across processes that survives a lost LISTEN.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use execstore::store::{
    EventKind, ExecutionStore, LoggedEvent, NewRecovery, Position, Scope, StoreError, StoreResult,
};
use futures_util::{Stream, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::fixtures::{create, input};
use crate::harness::{fresh, Backend};

type Events = Pin<Box<dyn Stream<Item = StoreResult<Arc<LoggedEvent>>> + Send>>;

fn follow(store: &ExecutionStore, root: &str, after: Option<Position>) -> Events {
    Box::pin(store.events().follow(root.to_owned(), &Scope::All, after))
}

async fn next(events: &mut Events) -> Arc<LoggedEvent> {
    // Generous: on the suite's shared PostgreSQL cluster, any long
    // transaction of another test holds delivery back (xmin is cluster-wide).
    tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("an event within 60 s")
        .expect("the stream goes on")
        .expect("no error")
}

/// Polls a live stream until it has joined the fan-out (it joins lazily),
/// so that what is written next reaches it.
async fn joined(store: &ExecutionStore, events: &mut Events) {
    for _ in 0..200 {
        if store.events().has_subscribers() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(10), events.next()).await;
    }
    panic!("the subscriber never joined");
}

async fn logged_rows(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM execution_events",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Every kind of write appends its event with the change, in commit order;
/// a refused write appends nothing.
async fn every_write_is_logged_in_order(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let start = store.events().cursor().await.unwrap();
    create(&store, "r", None).await;
    create(&store, "c", Some("r")).await;
    store
        .queue()
        .claim_execution("c", "w", 60_000)
        .await
        .unwrap();
    store.queue().extend_claim("c", "w", 60_000).await.unwrap();
    store.queue().release_execution("c", "w").await.unwrap();
    store
        .queue()
        .claim_execution("c", "w", 60_000)
        .await
        .unwrap();
    crate::fixtures::expire_lease(&t.db, "c").await;
    let expired = store.queue().expire_old_claims().await.unwrap();
    assert_eq!(expired, 1);
    store
        .queue()
        .record_recovery(NewRecovery {
            execution_id: "c".into(),
            worker_id: "w2".into(),
            reason: "lost".into(),
            previous_status: None,
            previous_worker_id: None,
        })
        .await
        .unwrap();
    let before_refusals = logged_rows(&t.db).await;
    assert!(store
        .runs()
        .create(input("orphan", Some("no-such-parent")), &Scope::All)
        .await
        .is_err());
    assert!(!store
        .queue()
        .extend_claim("c", "not-the-holder", 1000)
        .await
        .unwrap());
    assert!(!store.runs().delete("no-such", &Scope::All).await.unwrap());
    assert_eq!(
        logged_rows(&t.db).await,
        before_refusals,
        "refused writes log nothing"
    );
    store.runs().delete("r", &Scope::All).await.unwrap();

    let mut events = follow(&store, "r", Some(start));
    let expected = [
        (EventKind::Created, "r"),
        (EventKind::Created, "c"),
        (EventKind::Updated, "c"), // claimed
        (EventKind::Updated, "c"), // heartbeat
        (EventKind::Updated, "c"), // released
        (EventKind::Updated, "c"), // claimed again
        (EventKind::Updated, "c"), // the test's lease rewrite
        (EventKind::Updated, "c"), // claim marked expired
        (EventKind::Updated, "c"), // recovery recorded
        (EventKind::Deleted, "r"),
        (EventKind::Deleted, "c"),
    ];
    let mut last = start;
    for (kind, id) in expected {
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.execution_id.as_str()), (kind, id));
        assert_eq!(e.root_execution_id, "r");
        assert!(e.position > last, "positions increase");
        last = e.position;
        // Rows are read as they are now: everything was deleted.
        assert!(e.execution.is_none());
    }
}

/// A reader that drops its stream and resumes from the last cursor gets
/// exactly what it missed, then live events, with nothing twice.
async fn resume_after_disconnect(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let start = store.events().cursor().await.unwrap();
    create(&store, "root", None).await;
    for i in 0..10 {
        create(&store, &format!("a{i}"), Some("root")).await;
    }
    let mut first = follow(&store, "root", Some(start));
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut first).await);
    }
    assert_eq!(seen[0].execution.as_ref().unwrap().id, "root");
    drop(first);
    for i in 0..5 {
        create(&store, &format!("b{i}"), Some("root")).await;
    }
    let cursor = Position::decode(&seen.last().unwrap().cursor()).unwrap();
    let mut resumed = follow(&store, "root", Some(cursor));
    for _ in 0..11 {
        seen.push(next(&mut resumed).await);
    }
    create(&store, "live", Some("root")).await;
    seen.push(next(&mut resumed).await);
    let ids: Vec<&str> = seen.iter().map(|e| e.execution_id.as_str()).collect();
    let mut expected = vec!["root".to_owned()];
    expected.extend((0..10).map(|i| format!("a{i}")));
    expected.extend((0..5).map(|i| format!("b{i}")));
    expected.push("live".into());
    assert_eq!(ids, expected);
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    // The kinds and rows came along.
    assert!(seen.iter().all(|e| e.kind == EventKind::Created));
    assert_eq!(
        seen[7]
            .execution
            .as_ref()
            .unwrap()
            .parent_execution_id
            .as_deref(),
        Some("root")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resumed.next())
            .await
            .is_err(),
        "nothing more"
    );
}

/// Writers on several connections at once while a reader keeps dropping
/// its stream and resuming from its last cursor: it sees every event once,
/// in increasing positions. Afterwards, readers resuming at random cursors
/// each get exactly the rest of the sequence.
async fn reconnecting_reader_under_concurrent_writers(backend: Backend) {
    const WRITERS: usize = 4;
    const EACH: usize = 60;
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    let start = store.events().cursor().await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let id = format!("w{w}-{i}");
                    create(&store, &id, Some("root")).await;
                    // Every other one also changes, so updates interleave.
                    if i % 2 == 0 {
                        store
                            .queue()
                            .claim_execution(&id, "worker", 60_000)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    let expected_events = WRITERS * (EACH + EACH / 2);
    let mut seen: Vec<Arc<LoggedEvent>> = Vec::new();
    let mut last = start;
    let mut round = 0u64;
    while seen.len() < expected_events {
        round += 1;
        let mut events = follow(&store, "root", Some(last));
        // Take a pseudo-random number of events (1..=23), then disconnect.
        let take = 1 + (round * 7919 % 23) as usize;
        for _ in 0..take {
            if seen.len() == expected_events {
                break;
            }
            let e = next(&mut events).await;
            assert!(e.position > last, "no repeat, no step back");
            last = e.position;
            seen.push(e);
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let created: HashSet<&str> = seen
        .iter()
        .filter(|e| e.kind == EventKind::Created)
        .map(|e| e.execution_id.as_str())
        .collect();
    assert_eq!(created.len(), WRITERS * EACH, "every create, once");
    let updated = seen.iter().filter(|e| e.kind == EventKind::Updated).count();
    assert_eq!(updated, WRITERS * EACH / 2, "every claim, once");
    assert!(round > 10, "the reader reconnected many times ({round})");

    for pick in [0usize, 1, 17, 100, 239, expected_events - 2] {
        let from = seen[pick].position;
        let mut events = follow(&store, "root", Some(from));
        for expected in &seen[pick + 1..] {
            let e = next(&mut events).await;
            assert_eq!(e.position, expected.position, "resumed at #{pick}");
            assert_eq!(e.execution_id, expected.execution_id);
        }
    }
}

/// A live subscriber that reads nothing while 5,000 events are written
/// (far more than its queue holds) then receives all 5,000, in order.
async fn silent_reader_catches_up(backend: Backend) {
    const EVENTS: usize = 5000;
    // What is measured is delivery, not the disk: commits are not synced.
    let t = crate::harness::fresh_with(
        backend,
        &execstore::store::DbOptions {
            max_connections: 40,
            sqlite_sync: execstore::store::SqliteSync::Normal,
            ..Default::default()
        },
    )
    .await;
    let store = t.store();
    create(&store, "root", None).await;
    create(&store, "kid", Some("root")).await;
    let mut events = follow(&store, "root", None);
    joined(&store, &mut events).await;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..EVENTS / 4 {
                    let mut update = execstore::store::StatusUpdate::new(
                        "kid",
                        execstore::store::ExecutionStatus::Running,
                    );
                    update.error_message = Some(format!("{w}-{i}"));
                    store
                        .runs()
                        .update_execution_status(update, &Scope::All)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut last = Position::default();
    for n in 0..EVENTS {
        let e = next(&mut events).await;
        assert!(e.position > last, "event {n} in order");
        assert_eq!(
            (e.kind, e.execution_id.as_str()),
            (EventKind::Updated, "kid")
        );
        last = e.position;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "exactly 5,000"
    );
}

/// A cursor older than what the janitor kept ends the stream with
/// `EventsExpired`; a cursor at or after the cut resumes as usual.
async fn expired_cursor_is_refused(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let start = store.events().cursor().await.unwrap();
    create(&store, "root", None).await;
    create(&store, "a", Some("root")).await;
    // Within the retention nothing goes.
    let keep = execstore::store::JanitorSettings {
        interval: Duration::from_secs(60),
        event_retention: Duration::from_secs(3600),
        run_retention: None,
    };
    assert_eq!(store.janitor().round(&keep).await.unwrap().events_pruned, 0);
    // Both events read: both are readable, so the janitor sees them too.
    let mut events = follow(&store, "root", Some(start));
    assert_eq!(next(&mut events).await.execution_id, "root");
    let cut = next(&mut events).await.position;
    drop(events);

    let pruned = store
        .events()
        .prune_log(i64::MAX, execstore::store::PRUNE_BATCH)
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let mut events = follow(&store, "root", Some(start));
    let end = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an answer")
        .expect("an item");
    assert!(matches!(end, Err(StoreError::EventsExpired)), "{end:?}");
    assert!(events.next().await.is_none(), "the stream ends");

    let mut events = follow(&store, "root", Some(cut));
    create(&store, "b", Some("root")).await;
    assert_eq!(next(&mut events).await.execution_id, "b");
}

/// Two server processes on one PostgreSQL: each reads the log itself, so a
/// write through one reaches the other's subscribers, once, even when the
/// LISTEN connections that wake them are terminated meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_events_cross_processes_and_survive_a_lost_listen() {
    let t = fresh(Backend::Postgres).await;
    let a = t.store();
    let other_db = sea_orm::Database::connect(&t.url).await.unwrap();
    let b = ExecutionStore::new(other_db);
    a.relay_events_across_processes(&t.url).await.unwrap();
    b.relay_events_across_processes(&t.url).await.unwrap();
    create(&a, "root", None).await;
    let mut on_b = follow(&b, "root", None);
    joined(&b, &mut on_b).await;

    create(&a, "kid", Some("root")).await;
    let e = match tokio::time::timeout(Duration::from_secs(20), on_b.next()).await {
        Ok(e) => e.expect("the stream goes on").expect("no error"),
        Err(_) => {
            let rows =
                t.db.query_all(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT CAST(tx AS TEXT) AS tx, CAST(seq AS TEXT) AS seq, execution_id, \
                     CAST(pg_current_snapshot() AS TEXT) AS snap FROM execution_events",
                ))
                .await
                .unwrap();
            let rows: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r.try_get::<String>("", "tx").unwrap(),
                        r.try_get::<String>("", "seq").unwrap(),
                        r.try_get::<String>("", "execution_id").unwrap(),
                        r.try_get::<String>("", "snap").unwrap()
                    )
                })
                .collect();
            panic!(
                "kid's event never reached b: b {}; a {}; log {rows:?}",
                b.events().describe(),
                a.events().describe()
            );
        }
    };
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Created, "kid")
    );
    assert_eq!(
        e.execution.as_ref().unwrap().flow_id,
        "flow-1",
        "the row travels"
    );

    // Every LISTEN connection of this database goes away; a writes on.
    let killed =
        t.db.query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) AS gone FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        ))
        .await
        .unwrap();
    assert!(killed.len() >= 2, "both processes were listening");
    for i in 0..200 {
        create(&a, &format!("after-{i}"), Some("root")).await;
    }
    for i in 0..200 {
        let e = next(&mut on_b).await;
        assert_eq!(e.execution_id, format!("after-{i}"));
    }
    a.runs().delete("kid", &Scope::All).await.unwrap();
    let e = next(&mut on_b).await;
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Deleted, "kid")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_b.next())
            .await
            .is_err(),
        "every event exactly once"
    );
}

crate::both_backends!(
    every_write_is_logged_in_order,
    resume_after_disconnect,
    reconnecting_reader_under_concurrent_writers,
    silent_reader_catches_up,
    expired_cursor_is_refused
);
