//! Isolated test databases for the task-execution DAL, for this workspace's
//! tests and for users' own.
//!
//! [`TestDb::new`] gives each test its own migrated database on the backend
//! named by `TE_TEST_BACKEND` (`sqlite`, the default, or `postgres`):
//!
//! - **SQLite**: a fresh file in a temporary directory, removed afterwards.
//! - **PostgreSQL**: a fresh database, dropped afterwards, on the first server
//!   found of: the one `DATABASE_URL` points at; a throwaway local cluster made
//!   with `initdb` when the PostgreSQL server binaries are installed (and the
//!   tests do not run as root); a PostgreSQL container started with
//!   testcontainers when Docker is running (feature `testcontainers`, on by default).
//!
//! Tests running in parallel never see each other's rows.
//!
//! [`ScratchDb`] is the mechanism underneath, for any program that needs a
//! fresh database for one use (`te bench` and `cargo xtask bench` use it):
//! a new SQLite file or PostgreSQL database where a URL points, removed
//! afterwards.
//!
//! ```no_run
//! # async fn example() {
//! let db = te_testkit::TestDb::new().await;
//! let dal = db.dal();          // a migrated `TaskExecutionDal`
//! # let _ = dal;
//! # }
//! ```

mod fixtures;
mod postgres;
mod scratch;
mod sql;

use std::path::PathBuf;

use diesel::RunQueryDsl;
use te_core::schema::pipeline_executions;
use te_core::toolkit::{insert_tasks, now};
use te_core::{
    Backend, DalConfig, NewPipelineExecution, PipelineExecution, TaskExecution, TaskExecutionDal,
};
use uuid::Uuid;

pub use fixtures::{insert_contexts, insert_metadata};

pub use postgres::{PostgresServer, local_cluster_possible, postgres_server};
pub use scratch::{ScratchDb, ScratchError, remove_sqlite_files, with_database};

/// The environment variable that selects the backend of [`TestDb::new`].
pub const BACKEND_ENV: &str = "TE_TEST_BACKEND";

/// The environment variable that, with `TE_TEST_BACKEND=postgres`, sends
/// every [`TestDb`]'s connections through a connection pooler in transaction
/// mode: a `postgres://` URL of the pooler (its database name is replaced by
/// each test's own). The databases are still created and dropped on the
/// server `DATABASE_URL` names; the URLs handed out carry `pgbouncer=true`.
pub const POOLER_ENV: &str = "TE_TEST_POOLER_URL";

/// `pooler` (a URL of a transaction-mode pooler) for `database`, with
/// `pgbouncer=true`.
fn pooler_url(pooler: &str, database: &str) -> String {
    let url = with_database(pooler.trim(), database);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}pgbouncer=true")
}

/// The backend `TE_TEST_BACKEND` selects: `postgres` (or `pg`,
/// `postgresql`) selects PostgreSQL; unset, empty or `sqlite` selects SQLite.
///
/// # Panics
/// On any other value, so that a typo never silently runs the wrong backend.
pub fn backend_from_env() -> Backend {
    match std::env::var(BACKEND_ENV)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "sqlite" => Backend::Sqlite,
        "postgres" | "postgresql" | "pg" => Backend::Postgres,
        other => panic!("{BACKEND_ENV}={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// One test's own database, migrated, with a connected [`TaskExecutionDal`].
/// Dropping it removes the database.
pub struct TestDb {
    dal: TaskExecutionDal,
    url: String,
    /// The server's own URL of the database, when `url` goes through a pooler.
    direct_url: Option<String>,
    /// Declared last: the database goes once the DAL's pool is gone.
    scratch: ScratchDb,
}

impl TestDb {
    /// A migrated database on the backend `TE_TEST_BACKEND` selects.
    ///
    /// # Panics
    /// When that backend cannot be had (e.g. PostgreSQL requested and no
    /// server found): a test must never pass without running.
    pub async fn new() -> TestDb {
        Self::on(backend_from_env()).await
    }

    /// A migrated database on `backend`.
    ///
    /// # Panics
    /// As [`TestDb::new`].
    pub async fn on(backend: Backend) -> TestDb {
        let db = Self::unmigrated_on(backend).await;
        db.dal.run_migrations().await.expect("migrations apply");
        db
    }

    /// A database on `backend` without the DAL's tables (to test migrations).
    ///
    /// # Panics
    /// As [`TestDb::new`].
    pub async fn unmigrated_on(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary directory (not migrated).
    async fn sqlite() -> TestDb {
        let scratch = ScratchDb::at(None, "te-test")
            .unwrap_or_else(|e| panic!("create a SQLite test database: {e}"));
        let url = scratch.url().to_owned();
        let dal = TaskExecutionDal::connect_with(DalConfig::new(&url))
            .await
            .expect("open a SQLite test database");
        TestDb {
            dal,
            url,
            direct_url: None,
            scratch,
        }
    }

    /// A fresh database on the PostgreSQL server [`postgres_server`] finds (not migrated).
    async fn postgres() -> TestDb {
        let server = postgres_server().await.unwrap_or_else(|why| {
            panic!("PostgreSQL tests were requested but no PostgreSQL is available: {why}")
        });
        let admin = server.admin_url().to_owned();
        let scratch = tokio::task::spawn_blocking(move || ScratchDb::postgres(&admin, "te_test"))
            .await
            .expect("create database task")
            .unwrap_or_else(|e| panic!("create a PostgreSQL test database: {e}"));
        let direct = scratch.url().to_owned();
        // Through a transaction-mode pooler when `TE_TEST_POOLER_URL` names
        // one: the database is made and dropped on the server directly.
        let (url, direct_url) = match std::env::var(POOLER_ENV) {
            Ok(pooler) if !pooler.trim().is_empty() => {
                let database = scratch.postgres_name().unwrap_or_default();
                (pooler_url(&pooler, database), Some(direct))
            }
            _ => (direct, None),
        };
        let dal = TaskExecutionDal::connect_with(DalConfig::new(&url).max_connections(20))
            .await
            .expect("connect to the PostgreSQL test database");
        TestDb {
            dal,
            url,
            direct_url,
            scratch,
        }
    }

    /// The connected DAL.
    pub fn dal(&self) -> &TaskExecutionDal {
        &self.dal
    }

    /// The database's URL: open more connections, or hand it to another process.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's URL on the server itself, bypassing any pooler: the
    /// same as [`TestDb::url`] unless [`TestDb::through_pooler`].
    pub fn direct_url(&self) -> &str {
        self.direct_url.as_deref().unwrap_or(&self.url)
    }

    /// True when this database is reached through a transaction-mode pooler
    /// (`TE_TEST_POOLER_URL`): its URL carries `pgbouncer=true`.
    pub fn through_pooler(&self) -> bool {
        self.direct_url.is_some()
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.dal.backend()
    }

    /// The SQLite file, for SQLite databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.scratch.sqlite_path().map(PathBuf::from)
    }
}

impl std::ops::Deref for TestDb {
    type Target = TaskExecutionDal;

    fn deref(&self) -> &TaskExecutionDal {
        &self.dal
    }
}

/// Rows written exactly as given, bypassing the DAL's operations (no
/// validation, no audit events): fixtures in any state, e.g. a task already
/// `Failed` on its third attempt.
impl TestDb {
    /// Inserts a pipeline execution row as given; returns its id.
    ///
    /// # Panics
    /// If the insert fails.
    pub async fn insert_pipeline(&self, row: PipelineExecution) -> Uuid {
        let id = row.id;
        self.dal
            .write(move |conn| {
                diesel::insert_into(pipeline_executions::table)
                    .values(row)
                    .execute(conn)?;
                Ok(())
            })
            .await
            .expect("insert a pipeline execution fixture");
        id
    }

    /// Inserts a new pipeline execution named `name`, stamped now; returns its id.
    ///
    /// # Panics
    /// If the insert fails.
    pub async fn insert_new_pipeline(&self, name: &str) -> Uuid {
        self.insert_pipeline(NewPipelineExecution::new(name).into_row(None, now()))
            .await
    }

    /// Inserts task execution rows as given, with as few statements as the
    /// backend's bind limit allows, in one transaction.
    ///
    /// # Panics
    /// If the insert fails.
    pub async fn insert_tasks(&self, rows: Vec<TaskExecution>) {
        self.dal
            .write(move |conn| insert_tasks(conn, &rows))
            .await
            .expect("insert task execution fixtures");
    }
}
