//! `TaskExecutionDal`: the handle every operation hangs off, and the one
//! mechanism that runs a query on whichever backend is live.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{PoolError, TimeoutType};

use crate::config::Backend;
use crate::config::{DalConfig, Target};
use crate::data::any_connection::AnyConnection;
use crate::ground::error::{DalError, Interruption};
use crate::handle::connection::{establish, write_transaction};
use crate::handle::file_identity::FileIdentity;
use crate::handle::group_commit;
use crate::handle::migrations;
use crate::handle::pool::{self, Pool};
use crate::handle::signals::Wakeups;

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
    /// [`TaskExecutionDal::target`]: the URL without its password, with the
    /// DAL's settings that another handle needs to reach it the same way.
    description: String,
    /// SQLite admits one writer at a time. Writes of this handle queue here,
    /// in arrival order, instead of polling the file lock in SQLite's busy
    /// handler (which sleeps and is unfair), and the caller holding the turn
    /// commits every queued write in one transaction (see
    /// [`crate::group_commit`]); other processes still wait through the busy
    /// timeout. Each write has one deadline for its whole wait (see
    /// [`TaskExecutionDal::write`]), so the n-th write in the queue never
    /// waits n busy timeouts.
    sqlite_writes: group_commit::Queue,
    /// The turn to run the next batch of `sqlite_writes`.
    sqlite_turn: Arc<tokio::sync::Mutex<()>>,
    /// [`DalConfig::acquire_timeout`], named by [`DalError::Timeout`].
    acquire_timeout: Duration,
    /// [`DalConfig::sqlite_busy_timeout`]: each SQLite write's whole wait for
    /// its turn and for the write lock.
    busy_timeout: Duration,
    /// The SQLite file as it was when the handle connected (unix only).
    file: Option<FileIdentity>,
    /// Callers waiting for work, and how they are woken.
    wakeups: Arc<Wakeups>,
    /// State shared by this handle's clones, one value per type: the
    /// queues of coalesced calls, one per kind (see
    /// [`crate::handle::coalesce`]).
    shared: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
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
        let config = config.resolved()?;
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
        let mut description = target.redacted();
        if config.transaction_pooler {
            let sep = if description.contains('?') { '&' } else { '?' };
            description.push_str(&format!("{sep}pgbouncer=true"));
        }
        let wakeups = Arc::new(Wakeups::new(target.clone(), config.clone()));
        let pool = pool::build(target.clone(), config)?;
        Ok(TaskExecutionDal {
            inner: Arc::new(Inner {
                pool,
                backend,
                target,
                description,
                sqlite_writes: group_commit::Queue::default(),
                sqlite_turn: Arc::new(tokio::sync::Mutex::new(())),
                acquire_timeout,
                busy_timeout,
                file,
                wakeups,
                shared: Mutex::default(),
            }),
        })
    }

    /// The backend chosen from the URL.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The database, described without its password: a URL that reaches
    /// it the same way (with `pgbouncer=true` behind a transaction-mode
    /// pooler).
    pub fn target(&self) -> String {
        self.inner.description.clone()
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
        let conn = self.checkout().await?;
        let result = match conn.interact(f).await {
            Ok(result) => result,
            Err(interrupted) => {
                // A query that panicked may have left its transaction open
                // (and its locks held): the connection is closed now, not
                // when the pool next hands it out.
                discard(conn);
                return Err(DalError::Interrupted(interrupted.into()));
            }
        };
        match result {
            Err(err) if err.is_connection_lost() => {
                // Connections are not pinged when they are handed out; one
                // that the server or the network dropped is discarded here,
                // after the call that found it, instead of going back to the
                // pool.
                discard(conn);
                Err(err)
            }
            other => other.map_err(|e| self.locked_to_timeout(e)),
        }
    }

    /// Runs `f` inside a write transaction: all of
    /// its writes commit together, or none do.
    ///
    /// On SQLite, writes through one handle queue in the order they arrive,
    /// before they take a connection: the database has a single write lock,
    /// and queueing here keeps latency even under many concurrent writers.
    /// The writes queued together run one after another in one transaction
    /// (group commit), each inside its own savepoint: a write that fails is
    /// rolled back alone, and every write's answer comes after the commit
    /// that made it durable. The wait in the queue and the wait for the
    /// write lock (`BEGIN IMMEDIATE`, which another process may hold) share
    /// one deadline, [`DalConfig::sqlite_busy_timeout`] after the call
    /// began: past it the call fails with [`DalError::Timeout`] naming
    /// `sqlite_busy_timeout` and nothing of it is written. The wait for a
    /// pooled connection is bounded by [`DalConfig::acquire_timeout`]; however
    /// many writes are queued, none waits much longer than the busy timeout
    /// and two acquire timeouts together.
    ///
    /// On SQLite, a successful write wakes every caller of this handle
    /// waiting in `wait_for_ready`, before it is answered: a caller that
    /// waits after its write was answered is not woken by it (PostgreSQL's
    /// triggers send their own notifications).
    ///
    /// A call dropped before it is answered may or may not have committed,
    /// on either backend; read the row to know. On SQLite a write still in
    /// the queue when its batch is taken is left out; one already taken
    /// (perhaps waiting for the write lock) commits unanswered.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        self.write_waking(f, true).await
    }

    async fn write_waking<T, F>(&self, f: F, wake: bool) -> Result<T, DalError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
        T: Send + 'static,
    {
        match self.inner.backend {
            Backend::Postgres => self.run(move |conn| write_transaction(conn, f)).await,
            Backend::Sqlite => {
                let deadline = Instant::now() + self.inner.busy_timeout;
                let (write, answer) = group_commit::queued(f, deadline, wake);
                self.inner.sqlite_writes.push(write);
                self.await_sqlite_write(answer).await
            }
        }
    }

    /// Waits for the answer to a queued SQLite write, taking the turn to run
    /// a batch of the queue whenever it is free and the answer has not come.
    async fn await_sqlite_write<T>(
        &self,
        mut answer: tokio::sync::oneshot::Receiver<Result<T, DalError>>,
    ) -> Result<T, DalError> {
        loop {
            tokio::select! {
                biased;
                result = &mut answer => {
                    let result = result.map_err(|_| DalError::Interrupted(Interruption::Aborted))?;
                    return result.map_err(|e| self.locked_to_timeout(e));
                }
                turn = Arc::clone(&self.inner.sqlite_turn).lock_owned() => {
                    let batch = self.inner.sqlite_writes.take_batch();
                    if batch.is_empty() {
                        // This write was in a batch that has already answered it.
                        continue;
                    }
                    // The batch runs in its own task, holding the turn: a
                    // caller that stops waiting does not stop the writes of
                    // others.
                    let dal = self.clone();
                    tokio::spawn(async move {
                        dal.commit_sqlite_batch(batch).await;
                        drop(turn);
                    });
                }
            }
        }
    }

    /// Runs one batch of queued SQLite writes on a pooled connection and
    /// answers each of them.
    async fn commit_sqlite_batch(&self, mut batch: Vec<Box<dyn group_commit::Write>>) {
        let conn = match self.checkout().await {
            Ok(conn) => conn,
            Err(DalError::Timeout { what, after }) => {
                // Every write of the batch waited that long for a connection.
                for write in batch {
                    write.answer(Some(DalError::Timeout { what, after }));
                }
                return;
            }
            Err(err) => {
                // Not a wait: the first write gets the reason, and the others
                // go back to the queue to try again, meeting the same error in
                // turn if it lasts, as each would alone.
                batch.remove(0).answer(Some(err));
                self.inner.sqlite_writes.requeue(batch);
                return;
            }
        };
        let configured = self.inner.busy_timeout;
        let wakeups = Arc::clone(&self.inner.wakeups);
        // Anything committed may have made a task claimable: the waiters are
        // woken after the commit and before the writers are answered.
        let wake = move || wakeups.wake();
        let ran = conn
            .interact(move |conn| group_commit::run_batch(conn, batch, configured, &wake))
            .await;
        match ran {
            Ok(outcome) => {
                if outcome.broken {
                    discard(conn);
                }
            }
            // The writes of a batch whose thread was lost are answered by
            // their dropped channels (`Interruption::Aborted`).
            Err(_) => discard(conn),
        }
    }

    /// A pooled connection, after checking that a SQLite file is still the
    /// one the handle opened.
    async fn checkout(&self) -> Result<crate::handle::pool::Object, DalError> {
        if let Some(file) = &self.inner.file {
            file.check()?;
        }
        self.inner.pool.get().await.map_err(|e| self.pool_error(e))
    }

    /// The value of type `T` shared by this handle's clones, made with
    /// `T::default()` on first use.
    pub(crate) fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self
            .inner
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(entry)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("each value is stored under its own type"))
    }

    /// The wake-up state shared by this handle's clones.
    pub(crate) fn wakeups(&self) -> &Arc<Wakeups> {
        &self.inner.wakeups
    }

    /// [`DalError::Timeout`] for SQLite's busy timeout.
    fn busy_timeout(&self) -> DalError {
        DalError::sqlite_busy_timeout(self.inner.busy_timeout)
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
            PoolError::Timeout(TimeoutType::Wait) => self.acquire_timeout(),
            other => DalError::Pool(other),
        }
    }

    /// [`DalError::Timeout`] for the wait for a pooled connection.
    fn acquire_timeout(&self) -> DalError {
        DalError::Timeout {
            what: "acquire_timeout",
            after: self.inner.acquire_timeout,
        }
    }
}

/// Runs `f`, a write made of ONE data-modifying statement on PostgreSQL
/// (it may read before or after it), without a surrounding transaction
/// there: a single statement is atomic on its own, and skipping `BEGIN` and
/// `COMMIT` saves two round trips. On SQLite it runs exactly as
/// [`TaskExecutionDal::write`] does, under the write lock.
///
/// For the operation crates, whose single-task writes (a transition and its
/// audit event) are one statement on PostgreSQL. Anything that writes with
/// more than one statement must use [`TaskExecutionDal::write`].
pub async fn write_statement<T, F>(dal: &TaskExecutionDal, f: F) -> Result<T, DalError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
    T: Send + 'static,
{
    one_statement(dal, f, true).await
}

/// [`write_statement`] without waking waiters: for writes that never make a
/// task claimable (a claim). Idle workers that claim nothing must not wake
/// each other in a loop.
pub async fn write_statement_without_wakeup<T, F>(
    dal: &TaskExecutionDal,
    f: F,
) -> Result<T, DalError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
    T: Send + 'static,
{
    one_statement(dal, f, false).await
}

/// [`write_statement`], waking waiters on SQLite only when `wake` is set
/// (PostgreSQL's triggers send their own notifications).
async fn one_statement<T, F>(dal: &TaskExecutionDal, f: F, wake: bool) -> Result<T, DalError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
    T: Send + 'static,
{
    match dal.inner.backend {
        Backend::Postgres => dal.run(f).await,
        Backend::Sqlite => dal.write_waking(f, wake).await,
    }
}

/// Closes a pooled connection instead of returning it to the pool.
fn discard(conn: crate::handle::pool::Object) {
    drop(deadpool::managed::Object::take(conn));
}
