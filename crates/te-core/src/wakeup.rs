//! Wake-ups for callers waiting for work: the mechanism behind
//! `TaskClaiming::wait_for_ready` (a `LISTEN` connection on PostgreSQL,
//! an in-process signal and a `PRAGMA data_version` poll on SQLite).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use tokio::sync::Notify;

use crate::config::{Backend, DalConfig, Target};
use crate::connection::{AnyConnection, establish};
use crate::dal::TaskExecutionDal;
use crate::error::DalError;

/// The PostgreSQL channel the `ready_notify` migration's triggers notify.
pub(crate) const CHANNEL: &str = "te_task_ready";

/// The longest timeout `TaskClaiming::wait_for_ready` accepts.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// How often the listener reads notifications while someone waits.
const LISTEN_POLL: Duration = Duration::from_millis(2);
/// How often the listener drains notifications while nobody waits.
const LISTEN_IDLE: Duration = Duration::from_millis(50);
/// How long the listener waits before reconnecting after an error.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);
/// How often a SQLite waiter looks for writes by other processes.
const SQLITE_POLL: Duration = Duration::from_millis(250);

/// The wake-up state of one handle (shared by its clones).
pub(crate) struct Wakeups {
    notify: Notify,
    /// Callers inside `wait_for_ready` now.
    waiters: AtomicUsize,
    /// PostgreSQL: the listener thread has been started.
    listener_started: AtomicBool,
    /// PostgreSQL: signalled once the listener's first `LISTEN` succeeded.
    listening: Notify,
    listener_ready: AtomicBool,
    /// PostgreSQL: the listener thread, unparked when a first waiter comes
    /// (it polls slowly while nobody waits).
    listener: OnceLock<std::thread::Thread>,
    /// SQLite: a dedicated connection for `PRAGMA data_version`.
    version_conn: Mutex<Option<SqliteConnection>>,
    target: Target,
    config: DalConfig,
}

impl Wakeups {
    pub(crate) fn new(target: Target, config: DalConfig) -> Self {
        Wakeups {
            notify: Notify::new(),
            waiters: AtomicUsize::new(0),
            listener_started: AtomicBool::new(false),
            listening: Notify::new(),
            listener_ready: AtomicBool::new(false),
            listener: OnceLock::new(),
            version_conn: Mutex::new(None),
            target,
            config,
        }
    }

    /// Wakes every caller waiting now (after a write through the handle).
    pub(crate) fn wake(&self) {
        self.notify.notify_waiters();
    }
}

/// Counts a waiter for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

/// Reads `PRAGMA data_version` on the dedicated connection, opening it first
/// if needed; a failed connection is dropped so the next read reopens it.
fn data_version(wakeups: &Wakeups) -> Result<i64, DalError> {
    let mut slot = wakeups
        .version_conn
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_none() {
        let conn =
            establish(&wakeups.target, &wakeups.config).map_err(|source| DalError::Connection {
                target: wakeups.target.redacted(),
                source,
            })?;
        let AnyConnection::Sqlite(sqlite) = conn else {
            return Err(DalError::Config(
                "data_version is read on SQLite only".to_owned(),
            ));
        };
        *slot = Some(sqlite);
    }
    let conn = slot.as_mut().expect("opened above");
    match diesel::sql_query("PRAGMA data_version").get_result::<DataVersion>(conn) {
        Ok(row) => Ok(row.data_version),
        Err(err) => {
            *slot = None;
            Err(err.into())
        }
    }
}

/// The PostgreSQL listener: one connection per handle that `LISTEN`s on
/// [`CHANNEL`] and wakes every waiter on each notification. Runs on its own
/// thread until the handle is dropped; reconnects after any error, and then
/// wakes every waiter (a notification may have been missed meanwhile).
fn listen(wakeups: Weak<Wakeups>) {
    let mut conn: Option<PgConnection> = None;
    loop {
        let Some(state) = wakeups.upgrade() else {
            return;
        };
        if conn.is_none() {
            match establish(&state.target, &state.config) {
                Ok(AnyConnection::Postgres(mut pg)) => {
                    match pg.batch_execute(&format!("LISTEN {CHANNEL}")) {
                        Ok(()) => {
                            conn = Some(pg);
                            let first = !state.listener_ready.swap(true, Ordering::SeqCst);
                            state.listening.notify_waiters();
                            if !first {
                                state.wake();
                            }
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "LISTEN failed; retrying");
                        }
                    }
                }
                Ok(AnyConnection::Sqlite(_)) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "wake-up listener could not connect; retrying");
                }
            }
            if conn.is_none() {
                drop(state);
                std::thread::sleep(RECONNECT_AFTER);
                continue;
            }
        }
        let pg = conn.as_mut().expect("connected above");
        let mut woke = false;
        let mut failed = false;
        for next in pg.notifications_iter() {
            match next {
                Ok(_) => woke = true,
                Err(err) => {
                    tracing::warn!(error = %err, "wake-up listener lost its connection");
                    failed = true;
                    break;
                }
            }
        }
        if woke || failed {
            state.wake();
        }
        if failed {
            conn = None;
        }
        let pause = if state.waiters.load(Ordering::SeqCst) > 0 {
            LISTEN_POLL
        } else {
            LISTEN_IDLE
        };
        drop(state);
        // A first waiter unparks this thread, so it polls fast at once.
        std::thread::park_timeout(pause);
    }
}

impl TaskExecutionDal {
    /// The mechanism behind `TaskClaiming::wait_for_ready` (see there for the
    /// contract): waits until a wake-up arrives after the call began, or
    /// until `timeout` has passed.
    ///
    /// Returns `true` on a wake-up, `false` at the timeout and never before.
    /// `timeout` over [`MAX_WAIT`] (24 hours) is refused with
    /// [`DalError::InvalidInput`] on both backends.
    #[doc(hidden)]
    pub async fn wait_for_wakeup(&self, timeout: Duration) -> Result<bool, DalError> {
        if timeout > MAX_WAIT {
            return Err(DalError::invalid(
                "timeout",
                format!("must be at most 24 hours, got {timeout:?}"),
            ));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let wakeups = Arc::clone(self.wakeups());
        let _waiting = Waiting::enter(&wakeups.waiters);
        let notified = wakeups.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match self.backend() {
            Backend::Postgres => {
                self.ensure_listener(&wakeups, deadline).await;
                Ok(tokio::time::timeout_at(deadline, notified).await.is_ok())
            }
            Backend::Sqlite => {
                if matches!(wakeups.target, Target::SqliteMemory) {
                    // No other process can write an in-memory database.
                    return Ok(tokio::time::timeout_at(deadline, notified).await.is_ok());
                }
                let read = |w: Arc<Wakeups>| async move {
                    tokio::task::spawn_blocking(move || data_version(&w))
                        .await
                        .map_err(|e| DalError::Interrupted(e.into()))?
                };
                let start = read(Arc::clone(&wakeups)).await?;
                loop {
                    let next_poll = (tokio::time::Instant::now() + SQLITE_POLL).min(deadline);
                    tokio::select! {
                        _ = &mut notified => return Ok(true),
                        _ = tokio::time::sleep_until(next_poll) => {}
                    }
                    if read(Arc::clone(&wakeups)).await? != start {
                        return Ok(true);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Starts the PostgreSQL listener thread once, and waits (until
    /// `deadline` at most) for its first `LISTEN` to be in place, so that no
    /// notification committed after this returns is missed.
    async fn ensure_listener(&self, wakeups: &Arc<Wakeups>, deadline: tokio::time::Instant) {
        if !wakeups.listener_started.swap(true, Ordering::SeqCst) {
            let weak = Arc::downgrade(wakeups);
            let spawned = std::thread::Builder::new()
                .name("te-wakeup-listener".to_owned())
                .spawn(move || listen(weak));
            match spawned {
                Ok(handle) => {
                    let _ = wakeups.listener.set(handle.thread().clone());
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not start the wake-up listener");
                    wakeups.listener_started.store(false, Ordering::SeqCst);
                    return;
                }
            }
        } else if let Some(thread) = wakeups.listener.get() {
            thread.unpark();
        }
        while !wakeups.listener_ready.load(Ordering::SeqCst) {
            let ready = wakeups.listening.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if wakeups.listener_ready.load(Ordering::SeqCst) {
                break;
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                break;
            }
        }
    }
}
