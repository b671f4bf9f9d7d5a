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
    let (url, dir) = migrated(backend).await;
    // (Migrations found applied: `connect` only checks them.)
    let db = store::connect(&url, options)
        .await
        .expect("open the database");
    TestDb { url, db, _dir: dir }
}

/// A new database with every migration applied, copied from the suite's
/// template (migrated once per run): a PostgreSQL database made with
/// `CREATE DATABASE … TEMPLATE`, or a copy of a SQLite file. Migrating each
/// test's database anew cost most of a short test's time.
async fn migrated(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    static TEMPLATES: [tokio::sync::OnceCell<String>; 2] = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    let slot = match backend {
        Backend::Sqlite => 0,
        Backend::Postgres => 1,
    };
    let template = TEMPLATES[slot]
        .get_or_init(|| async {
            let (url, dir) = empty(backend).await;
            let db = store::connect(&url, &DbOptions::default())
                .await
                .expect("migrate the template database");
            if backend == Backend::Sqlite {
                // Everything in the file itself, nothing left in the WAL.
                db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .expect("checkpoint the template");
            }
            db.close().await.expect("close the template database");
            match dir {
                // Kept for the whole run (the copies are made from it).
                Some(dir) => dir.keep().join("test.db").display().to_string(),
                None => url.rsplit('/').next().unwrap_or_default().to_owned(),
            }
        })
        .await;
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = dir.path().join("test.db");
            std::fs::copy(template, &file).expect("copy the template database");
            let url = format!("sqlite://{}?mode=rwc", file.display());
            (url, Some(dir))
        }
        Backend::Postgres => {
            let name = next_name();
            let admin = Database::connect(cluster().url("postgres"))
                .await
                .expect("connect to cluster");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
                .expect("copy the template database");
            admin.close().await.ok();
            (cluster().url(&name), None)
        }
    }
}

fn next_name() -> String {
    format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    )
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
            let name = next_name();
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

/// A database made by an older server: migrated up to migration `version`
/// (counted from 1), `statements` run on it as that server would have
/// written, then opened by this store (which migrates the rest). The folder
/// that holds it for SQLite goes when dropped.
pub async fn old_database(
    backend: Backend,
    version: u32,
    statements: &[String],
) -> (ExecutionStore, Option<tempfile::TempDir>) {
    use migration::MigratorTrait;
    let (url, dir) = empty(backend).await;
    let old = Database::connect(&url).await.expect("connect");
    migration::Migrator::up(&old, Some(version))
        .await
        .expect("old migrations");
    for statement in statements {
        old.execute_unprepared(statement)
            .await
            .expect("old server's write");
    }
    old.close().await.expect("close");
    let db = store::connect(&url, &DbOptions::default())
        .await
        .expect("open with this store");
    (ExecutionStore::new(db), dir)
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
