//! Waiting for work: the mechanism behind `TaskClaiming::wait_for_ready`,
//! which waits on the wake-ups [`signals`](super::signals) delivers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Backend, Target};
use crate::ground::error::DalError;
use crate::handle::dal::TaskExecutionDal;
use crate::handle::signals::{
    CHANNEL, End, ForgetMarker, MARKER_PREFIX, PgWakeups, Waiting, Wakeups, data_version,
    latest_event, listen, lock, poll_until_changed,
};
use crate::sql::session;

/// The longest timeout `TaskClaiming::wait_for_ready` accepts.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The mechanism behind `TaskClaiming::wait_for_ready` (see there for the
/// contract): waits on `dal` until a wake-up arrives after the call began,
/// or until `timeout` has passed, and also returns by the instant `due`
/// answers (a task becomes claimable then), when that is before the
/// timeout. `due` runs once the wait is in place (after the marker or the
/// first `data_version` read), so a write committed after it wakes the wait
/// and one committed before is in its answer.
///
/// Returns `true` on a wake-up or at the due instant, `false` at the
/// timeout and never before. `timeout` over `MAX_WAIT` (24 hours) is
/// refused with [`DalError::InvalidInput`] on both backends.
pub async fn wait_for_wakeup<D, DFut>(
    dal: &TaskExecutionDal,
    timeout: Duration,
    due: D,
) -> Result<bool, DalError>
where
    D: FnOnce() -> DFut,
    DFut: std::future::Future<Output = Result<Option<DateTime<Utc>>, DalError>>,
{
    if timeout > MAX_WAIT {
        return Err(DalError::invalid(
            "timeout",
            format!("must be at most 24 hours, got {timeout:?}"),
        ));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let wakeups = Arc::clone(dal.wakeups());
    let _waiting = Waiting::enter(&wakeups.waiters);
    let notified = wakeups.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    match (dal.backend(), &wakeups.pg) {
        (Backend::Postgres, PgWakeups::Listen { .. }) => {
            if !dal.ensure_listener(&wakeups, deadline).await {
                let end = End::new(deadline, due().await?);
                return Ok(tokio::time::timeout_at(end.at, notified).await.is_ok() || end.due);
            }
            dal.wait_past_marker(&wakeups, deadline, due).await
        }
        (Backend::Postgres, PgWakeups::Poll) => {
            let read = || dal.run(latest_event);
            poll_until_changed(notified, deadline, read, due).await
        }
        (Backend::Sqlite, _) => {
            if matches!(wakeups.target, Target::SqliteMemory) {
                // No other process can write an in-memory database.
                let end = End::new(deadline, due().await?);
                return Ok(tokio::time::timeout_at(end.at, notified).await.is_ok() || end.due);
            }
            let read = || {
                let w = Arc::clone(&wakeups);
                async move {
                    tokio::task::spawn_blocking(move || data_version(&w))
                        .await
                        .map_err(|e| DalError::Interrupted(e.into()))?
                }
            };
            poll_until_changed(notified, deadline, read, due).await
        }
    }
}

impl TaskExecutionDal {
    /// PostgreSQL: sends a marker notification of this wait's own, then
    /// waits for a wake-up that the listener delivers after it read the
    /// marker. PostgreSQL delivers notifications in the order their
    /// transactions committed, so the notifications of the caller's own
    /// writes, answered (committed) before the wait began, come before the
    /// marker and never wake it, however late the listener reads them. A
    /// reconnect of the listener wakes it (notifications may have been
    /// missed). Costs one round trip (the `NOTIFY`) per wait.
    async fn wait_past_marker<D, DFut>(
        &self,
        wakeups: &Arc<Wakeups>,
        deadline: tokio::time::Instant,
        due: D,
    ) -> Result<bool, DalError>
    where
        D: FnOnce() -> DFut,
        DFut: std::future::Future<Output = Result<Option<DateTime<Utc>>, DalError>>,
    {
        let marker = format!("{MARKER_PREFIX}{}", uuid::Uuid::new_v4().simple());
        lock(&wakeups.markers).insert(marker.clone(), None);
        let _forget = ForgetMarker(wakeups, &marker);
        let payload = marker.clone();
        self.run(move |conn| {
            session::notify(conn, CHANNEL, &payload)?;
            Ok(())
        })
        .await?;
        let end = End::new(deadline, due().await?);
        loop {
            let notified = wakeups.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let read_at = lock(&wakeups.markers).get(&marker).copied().flatten();
            if read_at.is_some_and(|at| wakeups.delivered.load(Ordering::SeqCst) > at) {
                return Ok(true);
            }
            if tokio::time::timeout_at(end.at, notified).await.is_err() {
                return Ok(end.due);
            }
        }
    }

    /// Starts the PostgreSQL listener thread once, and waits (until
    /// `deadline` at most) for its first `LISTEN` to be in place, so that no
    /// notification committed after this returns is missed. False when the
    /// listener was not in place by the deadline.
    async fn ensure_listener(
        &self,
        wakeups: &Arc<Wakeups>,
        deadline: tokio::time::Instant,
    ) -> bool {
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
                    return false;
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
        wakeups.listener_ready.load(Ordering::SeqCst)
    }
}
