//! One fixture per test: a fresh SQLite file, or a fresh database on the
//! suite's throwaway PostgreSQL cluster (started once per test binary).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use execstore::store::{self, DbOptions, ExecutionStore};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use testkit::throwaway_pg::Cluster;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    pub db: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn store(&self) -> ExecutionStore {
        ExecutionStore::new(self.db.clone())
    }
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        Cluster::start(&[
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "400"),
        ])
        .unwrap_or_else(|e| {
            panic!("the PostgreSQL half of the suite needs a throwaway cluster and could not start one: {e}")
        })
    })
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

pub async fn fresh(backend: Backend) -> TestDb {
    fresh_with(
        backend,
        &DbOptions {
            max_connections: 40,
            ..DbOptions::default()
        },
    )
    .await
}

pub async fn fresh_with(backend: Backend, options: &DbOptions) -> TestDb {
    let (url, dir) = empty(backend).await;
    let db = store::connect(&url, options)
        .await
        .expect("open the database");
    TestDb { url, db, _dir: dir }
}

/// A new, empty database (no migration applied): its URL, and the folder
/// that holds it for SQLite (removed when dropped).
pub async fn empty(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => {
            let cluster = cluster();
            let name = format!(
                "t{}_{}",
                std::process::id(),
                NEXT_DB.fetch_add(1, Ordering::SeqCst)
            );
            let admin = Database::connect(cluster.url("postgres"))
                .await
                .expect("connect to cluster");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            (cluster.url(&name), None)
        }
    }
}

/// Runs each named `async fn(Backend)` of the enclosing module as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}
