use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use entity::execution;
use execstore::store::{ExecutionStatus, Scope, StatusUpdate, StoreError};
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::fixtures::{self, create, create_with_status, set_created_at, ts, OWNER};
use crate::harness::{fresh, Backend};

/// Root with `n` children where runs of `tie` consecutive children share one
/// created_at.
async fn feed_fixture(
    store: &execstore::store::ExecutionStore,
    db: &sea_orm::DatabaseConnection,
    n: usize,
    tie: usize,
) {
    create(store, "root", None).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let parent = if i % 5 == 4 {
            format!("c{:03}", i - 1)
        } else {
            "root".to_owned()
        };
        let id = format!("c{i:03}");
        create(store, &id, Some(&parent)).await;
        ids.push(id);
    }
    for (group, chunk) in ids.chunks(tie).enumerate() {
        set_created_at(db, chunk, ts(group as i64 * 1000)).await;
    }
}

async fn child_feed_pages_visit_every_row_once(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    feed_fixture(&store, &t.db, 53, 4).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .reads()
            .get_child_feed("root", None, Some(7), after.as_deref(), &Scope::All)
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.has_previous_page, after.is_some());
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|e| (e.created_at, e.id.clone())));
        if !page.has_next_page {
            break;
        }
        let last = page.items.last().unwrap();
        after = Some(execstore::store::Cursor::new(last.created_at, last.id.clone()).encode());
        assert!(pages < 20, "paging must end");
    }
    assert_eq!(pages, 8);
    let unique: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen.len(), 53, "every descendant once (the root excluded)");
    assert_eq!(unique.len(), 53);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first by (createdAt, id)");
}

async fn direct_child_feed_pages_and_validates(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    feed_fixture(&store, &t.db, 30, 3).await;
    let direct: Vec<_> = fixtures::child_executions(&store, "root", &Scope::All)
        .await
        .unwrap();
    assert_eq!(direct.len(), 24, "every 5th child hangs one level deeper");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .reads()
            .get_direct_child_feed("root", None, Some(5), after.as_deref(), &Scope::All)
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|e| e.id.clone()));
        if !page.has_next_page {
            break;
        }
        let last = page.items.last().unwrap();
        after = Some(execstore::store::Cursor::new(last.created_at, last.id.clone()).encode());
    }
    let mut expected: Vec<_> = direct.iter().map(|e| e.id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, exactly the direct children");

    let empty = store
        .reads()
        .get_direct_child_feed("root", None, Some(0), None, &Scope::All)
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert!(empty.has_next_page);

    for bad in ["garbage", "Zm9vOmJhcg", ""] {
        let err = store
            .reads()
            .get_child_feed("root", None, Some(5), Some(bad), &Scope::All)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidInput { field: "after", .. }),
            "{bad}: {err:?}"
        );
    }
    for first in [-1, 501] {
        let err = store
            .reads()
            .get_child_feed("root", None, Some(first), None, &Scope::All)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidInput { field: "first", .. }),
            "{first}"
        );
    }
    assert_eq!(
        store
            .reads()
            .get_child_feed("root", None, Some(500), None, &Scope::All)
            .await
            .unwrap()
            .items
            .len(),
        30
    );
}

async fn tree_is_rooted_at_any_node(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    create(&store, "a", Some("root")).await;
    create(&store, "b", Some("root")).await;
    create(&store, "a2", Some("a")).await;
    create(&store, "a1", Some("a")).await;
    create(&store, "a21", Some("a2")).await;
    // a1 and a2 share a timestamp: the id breaks the tie.
    set_created_at(&t.db, &["a1".into(), "a2".into()], ts(5)).await;

    let tree = fixtures::tree(&store, "a", &Scope::All).await.unwrap();
    let shape: Vec<_> = tree
        .iter()
        .map(|n| (n.execution.id.as_str(), n.level))
        .collect();
    assert_eq!(shape, vec![("a", 0), ("a1", 1), ("a2", 1), ("a21", 2)]);
    assert_eq!(tree[3].execution.parent_execution_id.as_deref(), Some("a2"));

    let whole = fixtures::tree(&store, "root", &Scope::All).await.unwrap();
    assert_eq!(whole.len(), 6);
    assert_eq!(whole[0].execution.id, "root");
    assert!(whole.windows(2).all(|w| w[0].level <= w[1].level));
    assert!(fixtures::tree(&store, "absent", &Scope::All)
        .await
        .unwrap()
        .is_empty());
    assert!(fixtures::tree(&store, "a", &Scope::Owner("other".into()))
        .await
        .unwrap()
        .is_empty());
}

async fn root_executions_report_levels_and_size(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "r1", None).await;
    create(&store, "r1.a", Some("r1")).await;
    create(&store, "r1.a.b", Some("r1.a")).await;
    create(&store, "r1.c", Some("r1")).await;
    create(&store, "r2", None).await;
    let mut other_flow = crate::fixtures::input("r3", None);
    other_flow.flow_id = "flow-2".into();
    store.runs().create(other_flow, &Scope::All).await.unwrap();
    create(&store, "r4", None).await;
    set_created_at(&t.db, &["r1".into()], ts(1)).await;
    set_created_at(&t.db, &["r2".into()], ts(2)).await;
    set_created_at(&t.db, &["r4".into()], ts(3)).await;

    let page = fixtures::roots(&store, "flow-1", Some(2), None, &Scope::All)
        .await
        .unwrap();
    let got: Vec<_> = page
        .items
        .iter()
        .map(|r| (r.execution.id.as_str(), r.levels, r.total_nested))
        .collect();
    assert_eq!(got, vec![("r4", 0, 0), ("r2", 0, 0)]);
    assert!(page.has_next_page);
    let last = &page.items[1].execution;
    let cursor = execstore::store::Cursor::new(last.created_at, last.id.clone()).encode();
    let page = fixtures::roots(&store, "flow-1", Some(2), Some(&cursor), &Scope::All)
        .await
        .unwrap();
    let got: Vec<_> = page
        .items
        .iter()
        .map(|r| (r.execution.id.as_str(), r.levels, r.total_nested))
        .collect();
    assert_eq!(got, vec![("r1", 2, 3)]);
    assert!(!page.has_next_page);
    assert!(
        fixtures::roots(&store, "flow-1", None, None, &Scope::Owner("x".into()))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn stats_aggregate_descendants(backend: Backend) {
    let t = fresh(backend).await;
    let store = t.store();
    create(&store, "root", None).await;
    create_with_status(&store, "a", Some("root"), ExecutionStatus::Running).await;
    create_with_status(&store, "b", Some("root"), ExecutionStatus::Completed).await;
    create_with_status(&store, "c", Some("a"), ExecutionStatus::Failed).await;
    create_with_status(&store, "d", Some("c"), ExecutionStatus::Paused).await;
    create_with_status(&store, "e", Some("root"), ExecutionStatus::Stopped).await;
    create(&store, "f", Some("root")).await;
    // b completed 2 minutes after the first descendant was created.
    set_created_at(
        &t.db,
        &[
            "a".into(),
            "b".into(),
            "c".into(),
            "d".into(),
            "e".into(),
            "f".into(),
        ],
        ts(0),
    )
    .await;
    let mut done = StatusUpdate::new("b", ExecutionStatus::Completed);
    done.completed_at = Some(ts(120_000_000));
    store
        .runs()
        .update_execution_status(done, &Scope::All)
        .await
        .unwrap();

    let stats = store
        .reads()
        .get_execution_stats("root", &Scope::All)
        .await
        .unwrap();
    assert_eq!(stats.total, 6);
    assert_eq!(
        (
            stats.created,
            stats.running,
            stats.paused,
            stats.completed,
            stats.failed,
            stats.stopped
        ),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(stats.max_depth, 3);
    assert_eq!(stats.first_created_at, Some(ts(0)));
    // c's and e's terminal statuses set completedAt = now, later than b's.
    assert!(stats.last_completed_at.unwrap() > ts(120_000_000));

    let empty = store
        .reads()
        .get_execution_stats("absent", &Scope::All)
        .await
        .unwrap();
    assert_eq!(empty.total, 0);
    assert_eq!(empty.completed_per_minute, None);

    // A clean two-minute window: one completion → 0.5 per minute.
    create(&store, "r2", None).await;
    create(&store, "x", Some("r2")).await;
    set_created_at(&t.db, &["x".into()], ts(0)).await;
    let mut done = StatusUpdate::new("x", ExecutionStatus::Completed);
    done.completed_at = Some(ts(120_000_000));
    store
        .runs()
        .update_execution_status(done, &Scope::All)
        .await
        .unwrap();
    let stats = store
        .reads()
        .get_execution_stats("r2", &Scope::All)
        .await
        .unwrap();
    assert_eq!(stats.completed_per_minute, Some(0.5));
}

async fn batch_children_is_one_statement_for_1000_parents(backend: Backend) {
    let t = fresh(backend).await;
    let now = execstore::store::now();
    let row = |id: String, parent: Option<String>, depth: i32| execution::ActiveModel {
        id: Set(id.clone()),
        flow_id: Set("flow-1".into()),
        owner_id: Set(OWNER.into()),
        root_execution_id: Set(parent.clone().map(|_| "p0000".to_owned()).unwrap_or(id)),
        parent_execution_id: Set(parent),
        status: Set(ExecutionStatus::Created),
        execution_depth: Set(depth),
        created_at: Set(now),
        updated_at: Set(now),
        failure_count: Set(0),
        ..Default::default()
    };
    let parents: Vec<String> = (0..1000).map(|i| format!("p{i:04}")).collect();
    for chunk in parents.chunks(200) {
        execution::Entity::insert_many(chunk.iter().map(|p| row(p.clone(), None, 0)))
            .exec(&t.db)
            .await
            .unwrap();
    }
    // Two children for every third parent.
    let children: Vec<_> = parents
        .iter()
        .step_by(3)
        .flat_map(|p| {
            [
                row(format!("{p}-x"), Some(p.clone()), 1),
                row(format!("{p}-y"), Some(p.clone()), 1),
            ]
        })
        .collect();
    for chunk in children.chunks(200) {
        execution::Entity::insert_many(chunk.to_vec())
            .exec(&t.db)
            .await
            .unwrap();
    }

    let statements = Arc::new(AtomicUsize::new(0));
    let mut counted = t.db.clone();
    let counter = statements.clone();
    counted.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let store = execstore::store::ExecutionStore::new(counted);
    let map = fixtures::children(&store, &parents, &Scope::All)
        .await
        .unwrap();
    assert_eq!(
        statements.load(Ordering::SeqCst),
        1,
        "one statement for 1,000 parents"
    );
    assert_eq!(map.len(), 1000);
    assert_eq!(map.values().map(Vec::len).sum::<usize>(), children.len());
    let kids: Vec<_> = map["p0003"].iter().map(|e| e.id.as_str()).collect();
    assert_eq!(kids, vec!["p0003-x", "p0003-y"]);
    assert!(map["p0001"].is_empty());

    let counts = store
        .reads()
        .count_direct_children(&parents, &Scope::All)
        .await
        .unwrap();
    assert_eq!(statements.load(Ordering::SeqCst), 2);
    assert_eq!(counts["p0000"], 2);
    assert_eq!(counts["p0001"], 0);
}

/// `rootExecutions(status:, createdFrom:, createdBefore:)`: 30 roots with
/// statuses cycling through created/running/failed, one per second; filters
/// combine, pages continue by cursor without repeats, and nonsense filters
/// are refused.
async fn root_executions_filter_by_status_and_window(backend: Backend) {
    use execstore::store::RootFilter;
    let t = fresh(backend).await;
    let store = t.store();
    let statuses = [
        ExecutionStatus::Created,
        ExecutionStatus::Running,
        ExecutionStatus::Failed,
    ];
    for i in 0..30 {
        let id = format!("r{i:02}");
        create_with_status(&store, &id, None, statuses[i % 3]).await;
        set_created_at(&t.db, &[id], ts(i as i64 * 1_000_000)).await;
    }
    create(&store, "r05.child", Some("r05")).await;
    let list = |filter: RootFilter, first: i64, after: Option<String>| {
        let store = store.clone();
        async move {
            store
                .reads()
                .get_root_executions(
                    "flow-1",
                    Some(first),
                    after.as_deref(),
                    &filter,
                    &Scope::All,
                )
                .await
        }
    };
    let ids = |page: &execstore::store::Page<execstore::store::RootExecution>| {
        page.items
            .iter()
            .map(|r| r.execution.id.clone())
            .collect::<Vec<_>>()
    };

    // Failed or running, newest first, paged by 4 without repeats.
    let filter = RootFilter {
        statuses: Some(vec![
            ExecutionStatus::Failed,
            ExecutionStatus::Running,
            ExecutionStatus::Failed,
        ]),
        ..RootFilter::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list(filter.clone(), 4, after.clone()).await.unwrap();
        seen.extend(ids(&page));
        if !page.has_next_page {
            break;
        }
        let last = &page.items.last().unwrap().execution;
        after = Some(execstore::store::Cursor::new(last.created_at, last.id.clone()).encode());
    }
    let expected: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 3 != 0)
        .map(|i| format!("r{i:02}"))
        .collect();
    assert_eq!(seen, expected);

    // A window [10 s, 20 s) of failed ones: r11, r14, r17 (newest first);
    // levels and totalNested still come along.
    let filter = RootFilter {
        statuses: Some(vec![ExecutionStatus::Failed]),
        created_from: Some(ts(10_000_000)),
        created_before: Some(ts(20_000_000)),
    };
    let page = list(filter, 50, None).await.unwrap();
    assert_eq!(ids(&page), vec!["r17", "r14", "r11"]);
    // Window alone: [4 s, 6 s) holds r04 and r05 (r05 with one child).
    let filter = RootFilter {
        created_from: Some(ts(4_000_000)),
        created_before: Some(ts(6_000_000)),
        ..RootFilter::default()
    };
    let page = list(filter, 50, None).await.unwrap();
    assert_eq!(ids(&page), vec!["r05", "r04"]);
    assert_eq!((page.items[0].levels, page.items[0].total_nested), (1, 1));

    let refused = [
        RootFilter {
            statuses: Some(vec![]),
            ..RootFilter::default()
        },
        RootFilter {
            created_from: Some(ts(5)),
            created_before: Some(ts(5)),
            ..RootFilter::default()
        },
    ];
    for filter in refused {
        let err = list(filter.clone(), 10, None).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidInput { .. }),
            "{filter:?}: {err:?}"
        );
    }
}

crate::both_backends!(
    root_executions_filter_by_status_and_window,
    child_feed_pages_visit_every_row_once,
    direct_child_feed_pages_and_validates,
    tree_is_rooted_at_any_node,
    root_executions_report_levels_and_size,
    stats_aggregate_descendants,
    batch_children_is_one_statement_for_1000_parents,
);
