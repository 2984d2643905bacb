//! SQLite's group commit: the writes of one handle wait in one queue, and the
//! caller whose turn it is runs every queued write in one `BEGIN IMMEDIATE`
//! transaction, each inside its own savepoint, and commits them with one
//! `COMMIT`. Every write is answered only after that commit, and after the
//! callers waiting for work have been woken for it: a caller that starts
//! waiting once its own write was answered is not woken by that write.
//!
//! A write whose caller was dropped (the call's future cancelled) may or may
//! not commit; only the row tells. One still in the queue when its batch is
//! taken is left out and never runs; one already taken (its batch may be
//! waiting for the database's write lock, or running) runs and commits like
//! the others, unanswered. On PostgreSQL a dropped call's statement is
//! likewise already with the server and may commit.
//!
//! A write that fails is rolled back to its savepoint and answered with its
//! own error; the others of its batch still commit. If the batch as a whole
//! cannot commit, nothing of it is written and every write is answered with
//! an error.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::oneshot;

use crate::data::any_connection::AnyConnection;
use crate::ground::error::{DalError, Interruption};
use crate::handle::connection::write_transaction_within;

/// The most writes one transaction takes from the queue: enough to cover
/// every worker of a busy process, few enough that the first write of a
/// batch is not kept waiting long for the last.
const MAX_BATCH: usize = 64;

/// A deadline this close counts as passed once the lock wait gave up
/// (SQLite's busy handler may stop a little before the exact time).
const DEADLINE_SLACK: Duration = Duration::from_millis(1);

/// One queued write and, once it ran, its result, kept until its batch
/// commits or fails.
pub(crate) trait Write: Send {
    /// When the write gives up waiting for the write lock.
    fn deadline(&self) -> Instant;
    /// True when its caller no longer waits for the answer (the call was
    /// dropped): such a write, found so when its batch is taken or before it
    /// runs, is not run at all (one found so later commits unanswered).
    fn abandoned(&self) -> bool;
    /// True when its success should wake callers waiting for ready tasks.
    fn wakes(&self) -> bool;
    /// Runs the write once on `conn` and keeps its result.
    fn run(&mut self, conn: &mut AnyConnection) -> Ran;
    /// True when it ran and succeeded.
    fn succeeded(&self) -> bool;
    /// Answers the caller: the kept result, or `failure` in place of a
    /// success that did not commit (a failed write keeps its own error).
    fn answer(self: Box<Self>, failure: Option<DalError>);
}

/// How running one write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It returned `Ok`.
    Succeeded,
    /// It returned an error.
    Failed,
    /// It panicked; the write keeps the panic as its error.
    Panicked,
}

/// A write of the queue with its result type.
struct Queued<T, F> {
    f: Option<F>,
    result: Option<Result<T, DalError>>,
    reply: oneshot::Sender<Result<T, DalError>>,
    deadline: Instant,
    wake: bool,
}

/// Wraps `f` as a queued write; the receiver gets its answer.
pub(crate) fn queued<T, F>(
    f: F,
    deadline: Instant,
    wake: bool,
) -> (Box<dyn Write>, oneshot::Receiver<Result<T, DalError>>)
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
    T: Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let write = Queued {
        f: Some(f),
        result: None,
        reply,
        deadline,
        wake,
    };
    (Box::new(write), answer)
}

impl<T, F> Write for Queued<T, F>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
    T: Send + 'static,
{
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn wakes(&self) -> bool {
        self.wake
    }

    fn run(&mut self, conn: &mut AnyConnection) -> Ran {
        let Some(f) = self.f.take() else {
            unreachable!("a queued write runs once")
        };
        match catch_unwind(AssertUnwindSafe(|| f(conn))) {
            Ok(result) => {
                let ran = if result.is_ok() {
                    Ran::Succeeded
                } else {
                    Ran::Failed
                };
                self.result = Some(result);
                ran
            }
            Err(payload) => {
                self.result = Some(Err(DalError::Interrupted(Interruption::from_panic(
                    &*payload,
                ))));
                Ran::Panicked
            }
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.result, Some(Ok(_)))
    }

    fn answer(self: Box<Self>, failure: Option<DalError>) {
        let result = match (self.result, failure) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(_)) | None, Some(failure)) => Err(failure),
            (Some(Ok(value)), None) => Ok(value),
            // Skipped because its caller had gone: there is no one to answer.
            (None, None) => return,
        };
        // The caller may have gone meanwhile; the outcome stands either way.
        let _ = self.reply.send(result);
    }
}

/// The queue of one handle's SQLite writes.
#[derive(Default)]
pub(crate) struct Queue {
    writes: Mutex<VecDeque<Box<dyn Write>>>,
}

impl Queue {
    /// Adds a write at the back.
    pub(crate) fn push(&self, write: Box<dyn Write>) {
        self.lock().push_back(write);
    }

    /// Puts writes that did not run back at the front, in their order.
    pub(crate) fn requeue(&self, writes: Vec<Box<dyn Write>>) {
        let mut queue = self.lock();
        for write in writes.into_iter().rev() {
            queue.push_front(write);
        }
    }

    /// Takes up to [`MAX_BATCH`] writes from the front.
    pub(crate) fn take_batch(&self) -> Vec<Box<dyn Write>> {
        let mut queue = self.lock();
        let n = queue.len().min(MAX_BATCH);
        queue.drain(..n).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Box<dyn Write>>> {
        // The queue is only pushed to and drained; a panic elsewhere cannot
        // leave it half-changed.
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What running a batch left behind.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    /// A write panicked or the transaction failed as a whole: the connection
    /// must not be used again.
    pub(crate) broken: bool,
}

/// Runs `batch` on `conn` and answers every write in it. When a committed
/// write asked to wake waiting callers, `wake` is called after the commit
/// and before any write is answered.
///
/// Writes whose deadline has passed are answered with
/// [`DalError::Timeout`] naming `sqlite_busy_timeout` (`configured`) before
/// anything runs; so are writes still waiting when the write lock stays held
/// by another connection up to their deadline (the busy timeout is lowered to
/// the earliest deadline of the batch, and the rest try again). A write that
/// cannot begin its transaction for another reason gets that error, and the
/// others try again, as each would alone.
pub(crate) fn run_batch(
    conn: &mut AnyConnection,
    batch: Vec<Box<dyn Write>>,
    configured: Duration,
    wake: &dyn Fn(),
) -> Outcome {
    let mut pending = batch;
    let mut slack = Duration::ZERO;
    loop {
        let now = Instant::now();
        let (expired, waiting): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|w| w.deadline() <= now + slack);
        expired
            .into_iter()
            .for_each(|w| w.answer(Some(DalError::sqlite_busy_timeout(configured))));
        pending = waiting.into_iter().filter(|w| !w.abandoned()).collect();
        let Some(first_deadline) = pending.iter().map(|w| w.deadline()).min() else {
            return Outcome::default();
        };
        let left = first_deadline.saturating_duration_since(now);
        let (mut ran, mut panicked) = (false, false);
        let result = write_transaction_within(conn, left, configured, |conn| {
            ran = true;
            run_each(conn, &mut pending, &mut panicked)
        });
        match (ran, result) {
            (false, Err(err)) if err.is_database_locked() => {
                // The wait reached the earliest deadline: those writes time
                // out above, the rest wait again.
                slack = DEADLINE_SLACK;
            }
            (false, Err(err)) => {
                // Could not begin: the first write gets the reason, the rest
                // try again.
                let first = pending.remove(0);
                first.answer(Some(err));
            }
            (false, Ok(())) => unreachable!("a transaction that began runs its writes"),
            (true, result) => {
                let failure = result.err();
                let outcome = Outcome {
                    // After a panic, or a failure of anything but a lone
                    // write, the connection's state is in doubt.
                    broken: panicked || failure.as_ref().is_some_and(|e| !is_lone_failure(e)),
                };
                let woken = failure.is_none()
                    && pending
                        .iter()
                        .any(|write| write.wakes() && write.succeeded());
                if woken {
                    // Before the answers: a writer that waits for work once
                    // answered must not be woken by its own write.
                    wake();
                }
                for write in pending {
                    write.answer(failure.as_ref().map(batch_failure));
                }
                return outcome;
            }
        }
    }
}

/// Runs each write of a begun transaction. A lone write runs as it would
/// alone: its error rolls the transaction back. With more than one, each
/// runs inside a savepoint, released on success and rolled back on error or
/// panic (a panic also sets `panicked`: the connection is not used again
/// after this transaction). An `Err` from here rolls the whole transaction
/// back.
fn run_each(
    conn: &mut AnyConnection,
    writes: &mut [Box<dyn Write>],
    panicked: &mut bool,
) -> Result<(), DalError> {
    if let [only] = writes {
        return match only.run(conn) {
            Ran::Succeeded => Ok(()),
            Ran::Failed => Err(rolled_back()),
            Ran::Panicked => {
                *panicked = true;
                Err(rolled_back())
            }
        };
    }
    for write in writes.iter_mut() {
        if write.abandoned() {
            continue;
        }
        AnsiTransactionManager::begin_transaction(sqlite(conn))?;
        match write.run(conn) {
            Ran::Succeeded => AnsiTransactionManager::commit_transaction(sqlite(conn))?,
            Ran::Failed => AnsiTransactionManager::rollback_transaction(sqlite(conn))?,
            Ran::Panicked => {
                *panicked = true;
                // Unwind whatever the write had begun, then its savepoint.
                while depth(conn)? > 1 {
                    AnsiTransactionManager::rollback_transaction(sqlite(conn))?;
                }
            }
        }
    }
    Ok(())
}

/// How many transactions and savepoints are open on `conn`.
fn depth(conn: &mut AnyConnection) -> Result<u32, DalError> {
    let status = AnsiTransactionManager::transaction_manager_status_mut(sqlite(conn));
    Ok(status.transaction_depth()?.map_or(0, |d| d.get()))
}

fn sqlite(conn: &mut AnyConnection) -> &mut diesel::SqliteConnection {
    match conn {
        AnyConnection::Sqlite(inner) => inner,
        AnyConnection::Postgres(_) => unreachable!("group commit is for SQLite"),
    }
}

/// The marker error of a lone write that failed or panicked (it keeps its
/// own error).
fn rolled_back() -> DalError {
    DalError::Database(DieselError::RollbackTransaction)
}

fn is_lone_failure(err: &DalError) -> bool {
    matches!(err, DalError::Database(DieselError::RollbackTransaction))
}

/// The error every succeeded write of a batch that did not commit answers
/// with: the same kind and message as the batch's error.
fn batch_failure(err: &DalError) -> DalError {
    match err {
        DalError::Database(DieselError::DatabaseError(kind, info)) => DalError::Database(
            DieselError::DatabaseError(*kind, Box::new(info.message().to_owned())),
        ),
        other => DalError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(format!(
                "the transaction of this write did not commit: {other}"
            )),
        )),
    }
}
