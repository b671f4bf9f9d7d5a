use std::time::Duration;

use execstore::store::{EventKind, ExecutionEvent, ExecutionStore, Scope};
use tokio::sync::broadcast::Receiver;

use crate::fixtures::{create, input};
use crate::harness::{fresh, Backend};

async fn next_event(
    rx: &mut Receiver<std::sync::Arc<ExecutionEvent>>,
) -> std::sync::Arc<ExecutionEvent> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("bus open")
}

async fn local_events_for_every_write(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    let mut rx = store.events().subscribe();
    create(&store, "r", None).await;
    create(&store, "c", Some("r")).await;
    store.claim_execution("c", "w", 60_000).await.unwrap();
    store.extend_claim("c", "w", 60_000).await.unwrap();
    store.release_execution("c", "w").await.unwrap();
    store.delete("r", &Scope::All).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..7 {
        let e = next_event(&mut rx).await;
        seen.push((e.kind, e.execution_id.clone(), e.root_execution_id.clone()));
    }
    let expected = [
        (EventKind::Created, "r"),
        (EventKind::Created, "c"),
        (EventKind::Updated, "c"),
        (EventKind::Updated, "c"),
        (EventKind::Updated, "c"),
        (EventKind::Deleted, "r"),
        (EventKind::Deleted, "c"),
    ];
    let got: Vec<_> = seen
        .iter()
        .map(|(k, id, root)| {
            assert_eq!(root, "r");
            (*k, id.as_str())
        })
        .collect();
    assert_eq!(got, expected);
}

/// Two server processes on one PostgreSQL (two stores, two buses, two
/// connections): a write through one reaches the other's subscribers, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_events_cross_processes() {
    let t = fresh(Backend::Postgres).await;
    let a = t.store();
    let other_db = sea_orm::Database::connect(&t.url).await.unwrap();
    let b = ExecutionStore::new(other_db);
    a.relay_events_across_processes(&t.url).await.unwrap();
    b.relay_events_across_processes(&t.url).await.unwrap();
    let mut on_b = b.events().subscribe();
    let mut on_a = a.events().subscribe();

    create(&a, "root", None).await;
    let e = next_event(&mut on_b).await;
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Created, "root")
    );
    assert_eq!(
        e.execution.as_ref().unwrap().flow_id,
        "flow-1",
        "the row travels (reloaded by b)"
    );
    b.create(input("kid", Some("root")), &Scope::All)
        .await
        .unwrap();
    let e = next_event(&mut on_a).await;
    assert_eq!(e.execution_id, "root", "a's own event, once");
    let e = next_event(&mut on_a).await;
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Created, "kid"),
        "b's write reaches a"
    );
    let e = next_event(&mut on_b).await;
    assert_eq!(
        e.execution_id, "kid",
        "b's own event, not doubled by its echo"
    );
    a.delete("kid", &Scope::All).await.unwrap();
    let e = next_event(&mut on_b).await;
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Deleted, "kid")
    );
    // Nothing else is queued on either side: every event arrived exactly once.
    assert!(on_b.try_recv().is_err());
    let e = next_event(&mut on_a).await;
    assert_eq!(
        (e.kind, e.execution_id.as_str()),
        (EventKind::Deleted, "kid")
    );
    assert!(on_a.try_recv().is_err());
}

crate::both_backends!(local_events_for_every_write);
