//! Every statement that loads a level reads only the rows it returns: none
//! scans `executions` sequentially, on a table whose statistics invite the
//! scan (200,200 rows, an average of 1,000 children per parent, ANALYZEd).
//! The statements checked are the ones the store really sent (captured by a
//! metric callback), explained with their own parameters.

use std::sync::{Arc, Mutex};

use execstore::store::{ChildWindow, ExecutionStatus, ExecutionStore, Finish, Scope};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::fixtures::{self, create, OWNER};
use crate::harness::{fresh, Backend};

const PARENTS: usize = 200;
const CHILDREN: usize = 200_000;

/// Roots p1…p200 with 1,000 children each (c1…c200000), all sharing the
/// seed row's timestamps.
/// Numbers from..=to as a row source `n(g)`.
fn numbers(backend: Backend, from: usize, to: usize) -> String {
    match backend {
        Backend::Postgres => format!("(SELECT g FROM generate_series({from}, {to}) AS g) n"),
        Backend::Sqlite => format!(
            "(WITH RECURSIVE n(g) AS (SELECT {from} UNION ALL SELECT g + 1 FROM n WHERE g < {to}) SELECT g FROM n) n"
        ),
    }
}

async fn seed(db: &sea_orm::DatabaseConnection, backend: Backend) {
    let numbers = |from: usize, to: usize| numbers(backend, from, to);
    let columns = "id, flow_id, owner_id, root_execution_id, parent_execution_id, status, \
                   execution_depth, created_at, updated_at, failure_count";
    let at = "(SELECT created_at FROM executions WHERE id = 'seed')";
    let parent = format!("'p' || CAST(((g % {PARENTS}) + 1) AS TEXT)");
    // The children in slices of 20,000, each its own short transaction: on
    // the suite's shared PostgreSQL cluster one long insert would hold the
    // cluster's xmin, and with it every other test's event delivery.
    let mut statements = vec![format!(
        "INSERT INTO executions ({columns}) SELECT 'p' || CAST(g AS TEXT), 'flow-1', '{OWNER}', \
         'p' || CAST(g AS TEXT), NULL, 'created', 0, {at}, {at}, 0 FROM {}",
        numbers(1, PARENTS)
    )];
    for from in (1..=CHILDREN).step_by(20_000) {
        statements.push(format!(
            "INSERT INTO executions ({columns}) SELECT 'c' || CAST(g AS TEXT), 'flow-1', '{OWNER}', \
             {parent}, {parent}, 'created', 1, {at}, {at}, 0 FROM {}",
            numbers(from, (from + 19_999).min(CHILDREN))
        ));
    }
    statements.push("ANALYZE".to_owned());
    for sql in statements {
        db.execute_unprepared(&sql)
            .await
            .expect("seed the plan table");
    }
}

/// The lines of `statement`'s plan, explained with its own parameters.
async fn plan(
    db: &sea_orm::DatabaseConnection,
    backend: Backend,
    statement: &Statement,
) -> Vec<String> {
    let explain = match backend {
        Backend::Postgres => "EXPLAIN ",
        Backend::Sqlite => "EXPLAIN QUERY PLAN ",
    };
    let db_backend = db.get_database_backend();
    let plan = Statement::from_sql_and_values(
        db_backend,
        format!("{explain}{}", statement.sql),
        statement.values.clone().map(|v| v.0).unwrap_or_default(),
    );
    let rows = db.query_all(plan).await.expect("explain");
    rows.iter()
        .map(|row| match db_backend {
            DbBackend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap(),
            _ => row.try_get::<String>("", "detail").unwrap(),
        })
        .collect()
}

/// The plan's lines that read `executions` (under any alias) row by row.
async fn sequential_scans(
    db: &sea_orm::DatabaseConnection,
    backend: Backend,
    statement: &Statement,
) -> Vec<String> {
    plan(db, backend, statement)
        .await
        .into_iter()
        .filter(|line| match backend {
            Backend::Postgres => line.contains("Seq Scan on executions"),
            // SQLite says SEARCH for an index probe and SCAN for a full
            // pass; json_each (k) and the recursion's queue are fine, and so
            // is a walk through a partial index of the fresh queue (in
            // order, stopping at the limit), of leased or of running
            // executions (as many as are in flight): recovery reads those;
            // or of the executions waiting for a slot (the janitor's pass
            // over every waiting run). A virtual table is a JSON input.
            Backend::Sqlite => {
                let words: Vec<&str> = line.split_whitespace().collect();
                let in_queue_order = [
                    "executions_claimable",
                    "executions_lapsing",
                    "executions_running",
                    "executions_run_waiters",
                    "executions_key_waiters",
                ]
                .iter()
                .any(|index| {
                    line.ends_with(&format!("USING INDEX {index}"))
                        || line.ends_with(&format!("USING COVERING INDEX {index}"))
                });
                words.first() == Some(&"SCAN")
                    && ["executions", "x", "r", "c", "e", "o"].contains(&words[1])
                    && !in_queue_order
                    && !line.contains("VIRTUAL TABLE")
            }
        })
        .collect()
}

async fn level_loads_never_scan_the_table(backend: Backend) {
    let t = fresh(backend).await;
    let plain = t.store();
    create(&plain, "seed", None).await;
    seed(&t.db, backend).await;
    plain
        .queue()
        .claim_execution("c7", "w", 60_000)
        .await
        .unwrap();

    let sent: Arc<Mutex<Vec<Statement>>> = Arc::default();
    let mut recording = t.db.clone();
    let log = sent.clone();
    recording.set_metric_callback(move |info| {
        log.lock().unwrap().push(info.statement.clone());
    });
    let store = ExecutionStore::new(recording);
    let parents: Vec<String> = (1..=50).map(|i| format!("p{i}")).collect();
    let children: Vec<String> = (1..=50).map(|i| format!("c{i}")).collect();
    let owner = Scope::Owner(OWNER.into());

    let mut checked = Vec::new();
    let mut run =
        async |what: &str, load: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>| {
            sent.lock().unwrap().clear();
            load.await;
            let statements = sent.lock().unwrap().clone();
            assert!(!statements.is_empty(), "{what}: no statement captured");
            for statement in statements {
                let scans = sequential_scans(&t.db, backend, &statement).await;
                assert!(
                    scans.is_empty(),
                    "{what} scans executions: {scans:?}\n{}",
                    statement.sql
                );
            }
            checked.push(what.to_owned());
        };
    let window = ChildWindow {
        per_parent: Some(100),
        after: None,
        max_rows: Some(50_000),
        ..ChildWindow::default()
    };
    run(
        "children (bounded)",
        Box::pin(async {
            let map = store
                .reads()
                .batch_get_direct_children(&parents, &window, &owner)
                .await
                .unwrap();
            assert_eq!(map["p1"].len(), 100);
        }),
    )
    .await;
    run(
        "children (all)",
        Box::pin(async {
            let map = fixtures::children(&store, &parents[..2], &Scope::All)
                .await
                .unwrap();
            assert_eq!(map["p2"].len(), 1000);
        }),
    )
    .await;
    run(
        "childCount",
        Box::pin(async {
            let counts = store
                .reads()
                .count_direct_children(&parents, &owner)
                .await
                .unwrap();
            assert_eq!(counts["p3"], 1000);
        }),
    )
    .await;
    run(
        "executions by id (parent, root)",
        Box::pin(async {
            assert_eq!(
                store
                    .reads()
                    .get_many(&parents, &owner)
                    .await
                    .unwrap()
                    .len(),
                50
            );
        }),
    )
    .await;
    run(
        "claim",
        Box::pin(async {
            let claims = store.reads().claims_for(&children, &owner).await.unwrap();
            assert_eq!(claims.len(), 1);
        }),
    )
    .await;
    run(
        "recoveryHistory",
        Box::pin(async {
            store
                .reads()
                .recovery_history_for(&children, &owner)
                .await
                .unwrap();
        }),
    )
    .await;
    run(
        "executionTree (root)",
        Box::pin(async {
            let tree = fixtures::tree(&store, "p9", &owner).await.unwrap();
            assert_eq!(tree.len(), 1001);
        }),
    )
    .await;
    run(
        "executionTree (inner node)",
        Box::pin(async {
            let tree = fixtures::tree(&store, "c9", &Scope::All).await.unwrap();
            assert_eq!(tree.len(), 1);
        }),
    )
    .await;
    run(
        "rootExecutions (levels, totalNested)",
        Box::pin(async {
            let page = fixtures::roots(&store, "flow-1", Some(20), None, &owner)
                .await
                .unwrap();
            assert_eq!(page.items.iter().map(|r| r.total_nested).max(), Some(1000));
        }),
    )
    .await;
    run(
        "rootExecutions (status, createdAt window)",
        Box::pin(async {
            let seeded = store
                .reads()
                .get("seed", &Scope::All)
                .await
                .unwrap()
                .unwrap();
            let filter = execstore::store::RootFilter {
                statuses: Some(vec![ExecutionStatus::Failed, ExecutionStatus::Created]),
                created_from: Some(seeded.created_at),
                created_before: Some(seeded.created_at + chrono::Duration::seconds(1)),
            };
            let page = store
                .reads()
                .get_root_executions("flow-1", Some(20), None, &filter, &owner)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20);
        }),
    )
    .await;
    run(
        "executionsNeedingRecovery",
        Box::pin(async {
            let got = store
                .queue()
                .get_executions_needing_recovery(10, &owner)
                .await
                .unwrap();
            assert_eq!(got.len(), 10);
        }),
    )
    .await;
    run(
        "childFeed (status)",
        Box::pin(async {
            let failed = [ExecutionStatus::Failed, ExecutionStatus::Created];
            let page = store
                .reads()
                .get_child_feed("p4", Some(&failed), Some(20), None, &owner)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20);
        }),
    )
    .await;
    run(
        "childFeed (newest first, a page after a cursor)",
        Box::pin(async {
            let first = store
                .reads()
                .get_child_feed("p4", None, Some(20), None, &owner)
                .await
                .unwrap();
            let last = first.items.last().unwrap();
            let after = execstore::store::Cursor::new(last.created_at, last.id.clone()).encode();
            let page = store
                .reads()
                .get_child_feed("p4", None, Some(20), Some(&after), &owner)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20);
        }),
    )
    .await;
    run(
        "directChildFeed (newest first)",
        Box::pin(async {
            let page = store
                .reads()
                .get_direct_child_feed("p5", None, Some(20), None, &owner)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20);
        }),
    )
    .await;
    run(
        "directChildFeed (status)",
        Box::pin(async {
            let page = store
                .reads()
                .get_direct_child_feed(
                    "p5",
                    Some(&[ExecutionStatus::Created]),
                    Some(20),
                    None,
                    &owner,
                )
                .await
                .unwrap();
            assert_eq!(page.items.len(), 20);
        }),
    )
    .await;
    run(
        "ancestors",
        Box::pin(async {
            let up = store.reads().get_ancestors("c11", &owner).await.unwrap();
            assert_eq!(up.len(), 1);
        }),
    )
    .await;
    for scope in [Scope::All, owner.clone()] {
        run(
            "flows",
            Box::pin(async {
                let page = store
                    .reads()
                    .get_flows(Some(10), None, &scope)
                    .await
                    .unwrap();
                assert_eq!(page.items.len(), 1);
            }),
        )
        .await;
    }
    for flow in [None, Some("flow-1")] {
        run(
            "claimNextExecutions",
            Box::pin(async {
                let got = store
                    .queue()
                    .claim_next_executions("puller", 60_000, flow, 10)
                    .await
                    .unwrap();
                assert_eq!(got.len(), 10);
            }),
        )
        .await;
    }
    let mut later = crate::fixtures::input("later", None);
    later.run_at = Some(execstore::store::now() + chrono::Duration::hours(1));
    store.runs().create(later, &Scope::All).await.unwrap();
    run(
        "the due timer (next due, promote)",
        Box::pin(async {
            let next = store.queue().next_due().await.unwrap();
            assert!(next.is_some());
            assert_eq!(store.queue().promote_due().await.unwrap(), 0);
        }),
    )
    .await;
    let mut timed = crate::fixtures::input("timed", None);
    timed.options = Some(serde_json::json!({ "execution": { "flowTimeoutMs": 60_000 } }));
    store.runs().create(timed, &Scope::All).await.unwrap();
    run(
        "the deadline timer (next deadline, runs past theirs)",
        Box::pin(async {
            assert!(store.runs().next_deadline().await.unwrap().is_some());
            let later = execstore::store::now() + chrono::Duration::hours(2);
            assert_eq!(store.runs().time_out_runs(later).await.unwrap(), 1);
        }),
    )
    .await;
    // Run control on a run of 1,000 among 200,000: the run's range of the
    // index of runs, never the table (an inner execution: the walk down the
    // index of children).
    run(
        "pauseExecution, resumeExecution",
        Box::pin(async {
            assert_eq!(store.runs().pause("p3", &owner).await.unwrap(), 1_001);
            assert_eq!(store.runs().resume("p3", &owner).await.unwrap(), 1_001);
        }),
    )
    .await;
    run(
        "cancelExecution (an inner execution)",
        Box::pin(async {
            assert_eq!(store.runs().cancel("c4", None, &owner).await.unwrap(), 1);
        }),
    )
    .await;
    run(
        "cancelExecution (a run)",
        Box::pin(async {
            assert_eq!(
                store.runs().cancel("p4", None, &owner).await.unwrap(),
                1_001
            );
        }),
    )
    .await;
    run(
        "retryExecutions",
        Box::pin(async {
            let n = store
                .runs()
                .retry_executions("p4", &[ExecutionStatus::Stopped], &owner)
                .await
                .unwrap();
            assert_eq!(n, 1_001);
        }),
    )
    .await;
    // Concurrency limits: the admissions read the run's or the key's
    // waiting and holding executions through their own indexes.
    let mut limited = crate::fixtures::input("limited", None);
    limited.options = Some(serde_json::json!({ "execution": { "maxConcurrency": 2 } }));
    run(
        "a limited run created, admitted, finished",
        Box::pin(async {
            store.runs().create(limited, &Scope::All).await.unwrap();
            let children = (0..50)
                .map(|i| {
                    let mut c = crate::fixtures::input(&format!("limited.{i}"), Some("limited"));
                    c.concurrency_key = Some("api".into());
                    c
                })
                .collect();
            store
                .runs()
                .create_many(children, &Scope::All)
                .await
                .unwrap();
            store
                .runs()
                .cancel("limited.0", None, &Scope::All)
                .await
                .unwrap();
        }),
    )
    .await;
    run(
        "setConcurrencyLimit (set, removed), concurrencyLimits",
        Box::pin(async {
            let set = store
                .runs()
                .set_concurrency_limit("api", Some(1))
                .await
                .unwrap();
            assert_eq!(set.map(|l| l.running), Some(1));
            assert_eq!(store.runs().concurrency_limits().await.unwrap().len(), 1);
            let gone = store
                .runs()
                .set_concurrency_limit("api", None)
                .await
                .unwrap();
            assert!(gone.is_none());
        }),
    )
    .await;
    run(
        "the janitor's admissions (every run waiting)",
        Box::pin(async {
            store.runs().admit_left_over().await.unwrap();
        }),
    )
    .await;
    let mut capped = crate::fixtures::input("capped", None);
    capped.options = Some(serde_json::json!({ "execution": { "nodeTimeoutMs": 1_000 } }));
    store.runs().create(capped, &Scope::All).await.unwrap();
    store
        .runs()
        .create(
            crate::fixtures::input("capped.0", Some("capped")),
            &Scope::All,
        )
        .await
        .unwrap();
    plain
        .queue()
        .claim_execution("capped.0", "w", 60_000)
        .await
        .unwrap();
    run(
        "the deadline timer (node timeouts)",
        Box::pin(async {
            let later = execstore::store::now() + chrono::Duration::hours(1);
            assert_eq!(store.queue().time_out_nodes(later).await.unwrap(), 1);
        }),
    )
    .await;
    assert_eq!(checked.len(), 30);
}

/// A batch of finishes or heartbeats finds its claims by primary key, one
/// probe per item, however many live claims the fleet holds: here 2,000
/// held by another worker among 200,000 claims (a plan through the index of
/// live claims would read every live one, and every entry the index keeps
/// for claims released since the last vacuum), and joins no two sides of
/// the batch pair by pair.
async fn claim_batches_probe_claims_by_key(backend: Backend) {
    let t = fresh(backend).await;
    let plain = t.store();
    create(&plain, "seed", None).await;
    let columns = "id, flow_id, owner_id, root_execution_id, status, execution_depth, \
                   created_at, updated_at, failure_count";
    let at = "(SELECT created_at FROM executions WHERE id = 'seed')";
    let expires = match backend {
        Backend::Postgres => format!("{at} + interval '1 hour'"),
        Backend::Sqlite => "'9999-01-01T00:00:00Z'".to_owned(),
    };
    for sql in [
        format!(
            "INSERT INTO executions ({columns}) SELECT 'q' || CAST(g AS TEXT), 'flow-1', '{OWNER}', \
             'q' || CAST(g AS TEXT), 'created', 0, {at}, {at}, 0 FROM {}",
            numbers(backend, 1, 200_050)
        ),
        format!(
            "INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status) \
             SELECT 'q' || CAST(g AS TEXT), 'holder', {at}, {expires}, {at}, \
             CASE WHEN g <= 2050 THEN 'active' ELSE 'released' END FROM {}",
            numbers(backend, 51, 200_050)
        ),
        "ANALYZE".to_owned(),
    ] {
        t.db.execute_unprepared(&sql).await.expect("seed claims");
    }
    let mine: Vec<String> = (1..=50).map(|i| format!("q{i}")).collect();
    for id in &mine {
        assert!(plain
            .queue()
            .claim_execution(id, "w", 600_000)
            .await
            .unwrap()
            .acquired());
    }

    let sent: Arc<Mutex<Vec<Statement>>> = Arc::default();
    let mut recording = t.db.clone();
    let log = sent.clone();
    recording.set_metric_callback(move |info| {
        log.lock().unwrap().push(info.statement.clone());
    });
    let store = ExecutionStore::new(recording);
    let extended = store
        .queue()
        .extend_many("w", mine.clone(), 600_000)
        .await
        .unwrap();
    assert!(extended.iter().all(|e| e.expires_at.is_some()));
    let finishes = mine
        .iter()
        .map(|id| Finish {
            execution_id: id.clone(),
            worker_id: "w".into(),
            status: ExecutionStatus::Completed,
            error_message: None,
            error_node_id: None,
            failure_reason: None,
            retry_in_ms: None,
        })
        .collect();
    let finished = store.queue().finish_many(finishes).await.unwrap();
    assert!(finished.iter().all(|f| f.refusal.is_none()));

    let statements = sent.lock().unwrap().clone();
    let mut claim_reads = 0;
    for statement in statements
        .iter()
        .filter(|s| s.sql.contains("execution_claims"))
    {
        for line in plan(&t.db, backend, statement).await {
            let reads_claims = match backend {
                Backend::Postgres => line.contains("Scan") && line.contains("execution_claims"),
                Backend::Sqlite => {
                    line.starts_with("SCAN execution_claims")
                        || line.starts_with("SEARCH execution_claims")
                }
            };
            // A join filter compares every row of one side with every row of
            // the other: a batch of 1,000 made 499,500 comparisons that way.
            assert!(
                !line.contains("Join Filter"),
                "a pairwise join in a batch's plan: {line}\n{}",
                statement.sql
            );
            if reads_claims {
                claim_reads += 1;
                let by_key = match backend {
                    Backend::Postgres => line.contains("execution_claims_pkey"),
                    Backend::Sqlite => line.contains("sqlite_autoindex_execution_claims_1"),
                };
                assert!(
                    by_key,
                    "claims read other than by key: {line}\n{}\n{:#?}",
                    statement.sql,
                    plan(&t.db, backend, statement).await
                );
            }
        }
    }
    assert!(claim_reads >= 2, "no claim read found in {statements:?}");
}

crate::both_backends!(
    level_loads_never_scan_the_table,
    claim_batches_probe_claims_by_key
);
