//! SQLite's group commit: concurrent writes share one synced transaction,
//! each is answered with its own result, and one that fails leaves the rest
//! of its group written. (Durability across a SIGKILL is
//! `process::sigkill_loses_no_acknowledged_write`, whose concurrent writers
//! go through the same groups.)

use execstore::store::{CreateExecution, NewRecovery, Scope, StoreError};

use crate::harness::{fresh, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_fail_alone() {
    const WRITERS: usize = 32;
    const EACH: usize = 20;
    let t = fresh(Backend::Sqlite).await;
    let store = t.store();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    let id = format!("w{w}-{n}");
                    let created = store
                        .runs()
                        .create(
                            CreateExecution {
                                id: Some(id.clone()),
                                flow_id: "group".into(),
                                owner_id: "o".into(),
                                ..Default::default()
                            },
                            &Scope::All,
                        )
                        .await
                        .unwrap();
                    assert_eq!(created.id, id, "each write answers with its own row");
                    // A write that fails inside the group (a recovery for an
                    // execution that does not exist breaks a foreign key).
                    let refused = store
                        .queue()
                        .record_recovery(NewRecovery {
                            execution_id: format!("missing-{w}-{n}"),
                            worker_id: "r".into(),
                            reason: "test".into(),
                            previous_status: None,
                            previous_worker_id: None,
                        })
                        .await;
                    assert!(
                        matches!(refused, Err(StoreError::NotFound { .. })),
                        "{refused:?}"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let (groups, writes) = store.group_commit_stats().expect("SQLite writes in groups");
    let all = (WRITERS * EACH) as i64;
    let ids: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..EACH).map(move |n| format!("w{w}-{n}")))
        .collect();
    let found = store.reads().get_many(&ids, &Scope::All).await.unwrap();
    assert_eq!(
        found.len() as i64,
        all,
        "every acknowledged create is there"
    );
    println!("{writes} writes in {groups} commits");
    assert!(writes >= all as u64, "{writes} writes counted");
    assert!(
        groups < writes,
        "concurrent writes shared commits ({groups} commits for {writes} writes)"
    );
}
