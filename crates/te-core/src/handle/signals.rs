//! Where wake-ups come from: the in-process signal every write of this
//! handle sends, PostgreSQL's listener thread (`LISTEN`), the poll for new
//! audit events behind a transaction-mode pooler, and SQLite's `PRAGMA
//! data_version`. [`wakeup`](super::wakeup) waits on them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{PgConnection, QueryDsl, RunQueryDsl, SqliteConnection};
use tokio::sync::Notify;

use crate::config::{DalConfig, Target};
use crate::data::any_connection::AnyConnection;
use crate::ground::error::DalError;
use crate::handle::connection::establish;
use crate::sql::session;

/// The PostgreSQL channel the `ready_notify` migration's triggers notify.
pub(crate) const CHANNEL: &str = "te_task_ready";

/// How often the listener reads notifications while someone waits.
const LISTEN_POLL: Duration = Duration::from_millis(2);
/// How often the listener drains notifications while nobody waits.
const LISTEN_IDLE: Duration = Duration::from_millis(50);
/// How long the listener waits before reconnecting after an error.
const RECONNECT_AFTER: Duration = Duration::from_millis(100);
/// How often a SQLite waiter looks for writes by other processes, and a
/// PostgreSQL waiter behind a transaction-mode pooler without a
/// `listen_url` for new audit events.
pub(crate) const WAKEUP_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How a PostgreSQL handle learns of writes by other handles.
pub(crate) enum PgWakeups {
    /// A connection `LISTEN`s on [`CHANNEL`]: the handle's own server, or
    /// the direct `listen_url` of a handle behind a pooler.
    Listen { target: Target, config: DalConfig },
    /// Behind a transaction-mode pooler with no `listen_url` (a `LISTEN`
    /// through the pooler would hear nothing): waiters poll for new audit
    /// events every [`WAKEUP_POLL_INTERVAL`].
    Poll,
}

impl PgWakeups {
    fn new(target: &Target, config: &DalConfig) -> Self {
        match (&config.listen_url, config.transaction_pooler) {
            (Some(url), _) => match Target::parse(url) {
                Ok(target @ Target::Postgres(_)) => PgWakeups::Listen {
                    target,
                    // A direct connection: statements may be prepared.
                    config: config.clone().transaction_pooler(false),
                },
                _ => {
                    tracing::warn!("listen_url is not a postgres:// URL; polling instead");
                    PgWakeups::Poll
                }
            },
            (None, true) => PgWakeups::Poll,
            (None, false) => PgWakeups::Listen {
                target: target.clone(),
                config: config.clone(),
            },
        }
    }
}

/// The payload prefix of a waiter's marker notification (see
/// `wakeup::wait_for_wakeup`); every other notification on
/// [`CHANNEL`] is a wake-up.
pub(crate) const MARKER_PREFIX: &str = "te-wait:";

/// The wake-up state of one handle (shared by its clones).
pub(crate) struct Wakeups {
    pub(crate) notify: Notify,
    /// PostgreSQL: how many wake-ups the listener has delivered (a
    /// notification other than a marker, or a reconnect, after which
    /// notifications may have been missed).
    pub(crate) delivered: AtomicU64,
    /// PostgreSQL: each waiting caller's marker, and `delivered` when the
    /// listener read it (`None` until then).
    pub(crate) markers: Mutex<HashMap<String, Option<u64>>>,
    /// Callers inside `wait_for_ready` now.
    pub(crate) waiters: AtomicUsize,
    /// PostgreSQL: the listener thread has been started.
    pub(crate) listener_started: AtomicBool,
    /// PostgreSQL: signalled once the listener's first `LISTEN` succeeded.
    pub(crate) listening: Notify,
    pub(crate) listener_ready: AtomicBool,
    /// PostgreSQL: the listener thread, unparked when a first waiter comes
    /// (it polls slowly while nobody waits).
    pub(crate) listener: OnceLock<std::thread::Thread>,
    /// SQLite: a dedicated connection for `PRAGMA data_version`.
    pub(crate) version_conn: Mutex<Option<SqliteConnection>>,
    /// PostgreSQL: how writes by other handles are noticed.
    pub(crate) pg: PgWakeups,
    pub(crate) target: Target,
    pub(crate) config: DalConfig,
}

impl Wakeups {
    pub(crate) fn new(target: Target, config: DalConfig) -> Self {
        Wakeups {
            notify: Notify::new(),
            delivered: AtomicU64::new(0),
            markers: Mutex::new(HashMap::new()),
            waiters: AtomicUsize::new(0),
            listener_started: AtomicBool::new(false),
            listening: Notify::new(),
            listener_ready: AtomicBool::new(false),
            listener: OnceLock::new(),
            version_conn: Mutex::new(None),
            pg: PgWakeups::new(&target, &config),
            target,
            config,
        }
    }

    /// PostgreSQL: the listener delivers a wake-up (see `delivered`).
    fn deliver(&self) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        self.wake();
    }

    /// PostgreSQL: the listener read the marker `payload`.
    fn marker_read(&self, payload: &str) {
        let delivered = self.delivered.load(Ordering::SeqCst);
        if let Some(slot) = lock(&self.markers).get_mut(payload) {
            *slot = Some(delivered);
        }
        self.wake();
    }

    /// Wakes every caller waiting now (after a write through the handle).
    pub(crate) fn wake(&self) {
        self.notify.notify_waiters();
    }
}

/// Removes a waiter's marker when the wait ends, however it ends.
pub(crate) struct ForgetMarker<'a>(pub(crate) &'a Wakeups, pub(crate) &'a str);

impl Drop for ForgetMarker<'_> {
    fn drop(&mut self) {
        lock(&self.0.markers).remove(self.1);
    }
}

/// The value behind `mutex`, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts a waiter for as long as it lives.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    pub(crate) fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads `PRAGMA data_version` on the dedicated connection, opening it first
/// if needed; a failed connection is dropped so the next read reopens it.
pub(crate) fn data_version(wakeups: &Wakeups) -> Result<i64, DalError> {
    let mut slot = lock(&wakeups.version_conn);
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
    match session::data_version(conn) {
        Ok(version) => Ok(version),
        Err(err) => {
            *slot = None;
            Err(err.into())
        }
    }
}

/// The newest audit event's sequence number (0 when there is none): every
/// write that can make a task claimable records an event, so a change of
/// it is a wake-up for a PostgreSQL waiter that polls. One look-up of the
/// primary key's index.
pub(crate) fn latest_event(conn: &mut AnyConnection) -> Result<i64, DalError> {
    use crate::data::schema::execution_events::dsl::{execution_events, sequence};
    let latest = execution_events
        .select(diesel::dsl::max(sequence))
        .first::<Option<i64>>(conn)?;
    Ok(latest.unwrap_or(0))
}

/// When a wait ends without a wake-up: at its deadline (`false`), or at the
/// alarm of a due instant before it (`true`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    pub(crate) at: tokio::time::Instant,
    pub(crate) due: bool,
}

impl End {
    /// The end of a wait until `deadline` whose task becomes due at `due`.
    pub(crate) fn new(deadline: tokio::time::Instant, due: Option<DateTime<Utc>>) -> Self {
        let alarm = due.map(|due| {
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + wait
        });
        match alarm {
            Some(at) if at < deadline => End { at, due: true },
            _ => End {
                at: deadline,
                due: false,
            },
        }
    }
}

/// Waits until `notified` fires (a write through this handle) or a value
/// read by `read` every [`WAKEUP_POLL_INTERVAL`] differs from the first one read
/// (a write by another handle or process): `true`; or until `deadline`:
/// `false`, or until the instant `due` answers once the first value is read:
/// `true`.
pub(crate) async fn poll_until_changed<N, R, Fut, D, DFut>(
    notified: std::pin::Pin<&mut N>,
    deadline: tokio::time::Instant,
    mut read: R,
    due: D,
) -> Result<bool, DalError>
where
    N: std::future::Future<Output = ()>,
    R: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<i64, DalError>>,
    D: FnOnce() -> DFut,
    DFut: std::future::Future<Output = Result<Option<DateTime<Utc>>, DalError>>,
{
    let mut notified = notified;
    let start = read().await?;
    let end = End::new(deadline, due().await?);
    loop {
        let next_poll = (tokio::time::Instant::now() + WAKEUP_POLL_INTERVAL).min(end.at);
        tokio::select! {
            _ = notified.as_mut() => return Ok(true),
            _ = tokio::time::sleep_until(next_poll) => {}
        }
        if read().await? != start {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= end.at {
            return Ok(end.due);
        }
    }
}

/// The PostgreSQL listener: one connection per handle that `LISTEN`s on
/// [`CHANNEL`] and wakes every waiter on each notification. Runs on its own
/// thread until the handle is dropped; reconnects after any error, and then
/// wakes every waiter (a notification may have been missed meanwhile).
pub(crate) fn listen(wakeups: Weak<Wakeups>) {
    let mut conn: Option<PgConnection> = None;
    loop {
        let Some(state) = wakeups.upgrade() else {
            return;
        };
        if conn.is_none() {
            let PgWakeups::Listen { target, config } = &state.pg else {
                return;
            };
            match establish(target, config) {
                Ok(AnyConnection::Postgres(mut pg)) => match session::listen(&mut pg, CHANNEL) {
                    Ok(()) => {
                        conn = Some(pg);
                        let first = !state.listener_ready.swap(true, Ordering::SeqCst);
                        state.listening.notify_waiters();
                        if !first {
                            state.deliver();
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not listen for wake-ups; retrying");
                    }
                },
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
                Ok(note) if note.payload.starts_with(MARKER_PREFIX) => {
                    state.marker_read(&note.payload);
                }
                Ok(_) => {
                    // Counted at once, so that a marker read later in this
                    // batch comes after it.
                    state.delivered.fetch_add(1, Ordering::SeqCst);
                    woke = true;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "wake-up listener lost its connection");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            state.deliver();
        } else if woke {
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
