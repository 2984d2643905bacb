//! `TaskExecutionDal`: the handle every operation hangs off, and the one
//! mechanism that runs a query on whichever backend is live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{PoolError, TimeoutType};

use crate::config::Backend;
use crate::config::{DalConfig, Target};
use crate::connection::{AnyConnection, establish, write_transaction, write_transaction_within};
use crate::error::DalError;
use crate::file_identity::FileIdentity;
use crate::migrations;
use crate::pool::{self, Pool};
use crate::wakeup::Wakeups;

/// A handle on one database: a connection pool and its backend.
///
/// Cheap to clone (clones share the pool) and safe to use from many tasks at
/// once. The operation crates (`te-crud`, `te-state`, `te-context`,
/// `te-claiming`, `te-queries`) add their methods to it through sealed
/// traits; the `task-execution-dal` facade's documentation lists every
/// method by trait ("Methods on `TaskExecutionDal`, by trait"), and its
/// `prelude` brings them all into scope.
#[derive(Clone)]
pub struct TaskExecutionDal {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    backend: Backend,
    target: Target,
    /// SQLite admits one writer at a time. Writers of this handle queue here,
    /// in arrival order, instead of polling the file lock in SQLite's busy
    /// handler (which sleeps and is unfair); other processes still wait
    /// through the busy timeout. The wait here and the wait for the lock
    /// share one deadline per call (see [`TaskExecutionDal::write`]), so the
    /// n-th writer in the queue never waits n busy timeouts.
    sqlite_writer: tokio::sync::Mutex<()>,
    /// [`DalConfig::acquire_timeout`], named by [`DalError::Timeout`].
    acquire_timeout: Duration,
    /// [`DalConfig::sqlite_busy_timeout`]: each SQLite write's whole wait for
    /// its turn and for the write lock.
    busy_timeout: Duration,
    /// The SQLite file as it was when the handle connected (unix only).
    file: Option<FileIdentity>,
    /// Callers waiting for work, and how they are woken.
    wakeups: Arc<Wakeups>,
}

impl std::fmt::Debug for TaskExecutionDal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskExecutionDal")
            .field("backend", &self.inner.backend)
            .field("target", &self.inner.target.redacted())
            .finish_non_exhaustive()
    }
}

impl TaskExecutionDal {
    /// Connects to the database `url` names with default settings: see
    /// [`DalConfig::new`] and [`Target::parse`] for what URLs are accepted.
    ///
    /// One connection is made before this returns, so an unreachable server,
    /// a refused login or an unwritable file is reported here, with the
    /// driver's own message, as [`DalError::Connection`].
    pub async fn connect(url: &str) -> Result<Self, DalError> {
        Self::connect_with(DalConfig::new(url)).await
    }

    /// Connects with explicit settings.
    ///
    /// For a SQLite file, the file's identity (device and inode) is recorded
    /// here; every later call checks that the path still names that file and
    /// fails with [`DalError::DatabaseFileMissing`] if it was deleted or
    /// replaced (on unix; elsewhere nothing is checked).
    pub async fn connect_with(config: DalConfig) -> Result<Self, DalError> {
        let target = Target::parse(&config.url)?;
        let backend = target.backend();
        // Make one connection with the concrete driver first: its error is
        // the real cause, where the pool would only report a timeout.
        let probe_target = target.clone();
        let probe_config = config.clone();
        tokio::task::spawn_blocking(move || establish(&probe_target, &probe_config))
            .await
            .map_err(|e| DalError::Interrupted(e.into()))?
            .map_err(|source| DalError::Connection {
                target: target.redacted(),
                source,
            })?;
        let file = match &target {
            Target::SqliteFile(path) => FileIdentity::of(path),
            Target::Postgres(_) | Target::SqliteMemory => None,
        };
        let (acquire_timeout, busy_timeout) = (config.acquire_timeout, config.sqlite_busy_timeout);
        let wakeups = Arc::new(Wakeups::new(target.clone(), config.clone()));
        let pool = pool::build(target.clone(), config)?;
        Ok(TaskExecutionDal {
            inner: Arc::new(Inner {
                pool,
                backend,
                target,
                sqlite_writer: tokio::sync::Mutex::new(()),
                acquire_timeout,
                busy_timeout,
                file,
                wakeups,
            }),
        })
    }

    /// The backend chosen from the URL.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The database, described without its password.
    pub fn target(&self) -> String {
        self.inner.target.redacted()
    }

    /// The connection pool (for its status, or to close it).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Applies the embedded migrations; idempotent, and safe when several
    /// processes start at once. Returns nothing: use [`Self::migrate`] to learn
    /// how many were applied.
    pub async fn run_migrations(&self) -> Result<(), DalError> {
        self.migrate().await.map(|_| ())
    }

    /// Applies the embedded migrations and returns how many were pending.
    pub async fn migrate(&self) -> Result<usize, DalError> {
        self.run(migrations::run_pending).await
    }

    /// Reverts every migration: drops every table of the DAL. Meant for tests.
    pub async fn revert_migrations(&self) -> Result<usize, DalError> {
        self.run(migrations::revert_all).await
    }

    /// Runs `f` on a pooled connection, on a thread where blocking is allowed.
    ///
    /// This is the one mechanism every operation uses: write the query once
    /// against [`AnyConnection`] and it runs on either backend.
    ///
    /// Waiting for a free connection ends after [`DalConfig::acquire_timeout`]
    /// with [`DalError::Timeout`] naming it; a SQLite statement that finds the
    /// database locked for the whole busy timeout fails with
    /// [`DalError::Timeout`] naming `sqlite_busy_timeout`. A SQLite file
    /// deleted or replaced since the handle connected fails with
    /// [`DalError::DatabaseFileMissing`] before any connection is used.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(file) = &self.inner.file {
            file.check()?;
        }
        let conn = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| self.pool_error(e))?;
        let result = conn
            .interact(f)
            .await
            .map_err(|e| DalError::Interrupted(e.into()))?;
        match result {
            Err(err) if err.is_connection_lost() => {
                // Connections are not pinged when they are handed out; one
                // that the server or the network dropped is discarded here,
                // after the call that found it, instead of going back to the
                // pool.
                drop(deadpool::managed::Object::take(conn));
                Err(err)
            }
            other => other.map_err(|e| self.locked_to_timeout(e)),
        }
    }

    /// Runs `f` inside a write transaction: all of
    /// its writes commit together, or none do.
    ///
    /// On SQLite, writes through one handle are admitted one at a time, in
    /// the order they arrive, before they take a connection: the database
    /// has a single write lock, and queueing here keeps latency even under
    /// many concurrent writers. The wait for this turn and the wait for the
    /// write lock (`BEGIN IMMEDIATE`, which another process may hold) share
    /// one deadline, [`DalConfig::sqlite_busy_timeout`] after the call
    /// began: the connection's busy timeout is lowered to what is left of it
    /// for this transaction. Past it the call fails with
    /// [`DalError::Timeout`] naming `sqlite_busy_timeout`; the wait for a
    /// pooled connection is bounded by [`DalConfig::acquire_timeout`]. No
    /// write waits longer than the two together, however many are queued.
    ///
    /// On SQLite, a successful write wakes every caller of this handle
    /// waiting in `wait_for_ready` (PostgreSQL's triggers send their own
    /// notifications).
    pub async fn write<T, F>(&self, f: F) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        self.write_waking(f, true).await
    }

    /// [`TaskExecutionDal::write_statement`] without waking waiters: for
    /// writes that never make a task claimable (a claim). Idle workers that
    /// claim nothing must not wake each other in a loop.
    #[doc(hidden)]
    pub async fn write_statement_without_wakeup<T, F>(&self, f: F) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        match self.inner.backend {
            Backend::Postgres => self.run(f).await,
            Backend::Sqlite => self.write_waking(f, false).await,
        }
    }

    async fn write_waking<T, F>(&self, f: F, wake: bool) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        match self.inner.backend {
            Backend::Postgres => self.run(move |conn| write_transaction(conn, f)).await,
            Backend::Sqlite => {
                let configured = self.inner.busy_timeout;
                let deadline = Instant::now() + configured;
                let _turn = tokio::time::timeout_at(
                    tokio::time::Instant::from_std(deadline),
                    self.inner.sqlite_writer.lock(),
                )
                .await
                .map_err(|_| self.busy_timeout())?;
                let result = self
                    .run(move |conn| {
                        let left = deadline.saturating_duration_since(Instant::now());
                        write_transaction_within(conn, left, configured, f)
                    })
                    .await;
                if wake && result.is_ok() {
                    // Anything committed may have made a task claimable.
                    self.inner.wakeups.wake();
                }
                result
            }
        }
    }

    /// The wake-up state shared by this handle's clones.
    pub(crate) fn wakeups(&self) -> &Arc<Wakeups> {
        &self.inner.wakeups
    }

    /// [`DalError::Timeout`] for SQLite's busy timeout.
    fn busy_timeout(&self) -> DalError {
        DalError::Timeout {
            what: "sqlite_busy_timeout",
            after: self.inner.busy_timeout,
        }
    }

    /// SQLite's "database is locked" is the busy timeout expiring.
    fn locked_to_timeout(&self, err: DalError) -> DalError {
        if err.is_database_locked() {
            self.busy_timeout()
        } else {
            err
        }
    }

    /// A pool failure; waiting too long for a connection is a timeout.
    fn pool_error(&self, err: crate::PoolError) -> DalError {
        match err {
            PoolError::Timeout(TimeoutType::Wait) => DalError::Timeout {
                what: "acquire_timeout",
                after: self.inner.acquire_timeout,
            },
            other => DalError::Pool(other),
        }
    }

    /// Runs `f`, a write made of ONE data-modifying statement on PostgreSQL
    /// (it may read before or after it), without a surrounding transaction
    /// there: a single statement is atomic on its own, and skipping `BEGIN`
    /// and `COMMIT` saves two round trips. On SQLite it runs exactly as
    /// [`TaskExecutionDal::write`] does, under the write lock.
    ///
    /// For the operation crates, whose single-task writes (a transition and
    /// its audit event) are one statement on PostgreSQL. Anything that writes
    /// with more than one statement must use [`TaskExecutionDal::write`].
    #[doc(hidden)]
    pub async fn write_statement<T, F>(&self, f: F) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        match self.inner.backend {
            Backend::Postgres => self.run(f).await,
            Backend::Sqlite => self.write(f).await,
        }
    }
}
