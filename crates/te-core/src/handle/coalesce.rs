//! Coalescing of concurrent per-task calls on one handle: calls of one kind
//! (claims, completions) wait in one queue, and the caller whose turn it is
//! takes every queued call that fits one batch and runs them as one
//! statement, answering each with its own result. What PostgreSQL gets in
//! place of SQLite's group commit (`handle::group_commit`).
//!
//! There is no timer and no batching window: a call that finds the turn free
//! runs at once, alone; the calls that arrive while a batch runs wait for
//! the turn and go together in the next one. At most one batch of a kind is
//! in flight per handle.
//!
//! A batch runs in a task of its own, holding the turn, so a caller that
//! stops waiting (its future dropped) does not stop the calls of others. A
//! call whose caller is gone before its batch is taken is left out and never
//! runs; one already taken runs, and its answer, which nobody receives, is
//! dropped (an answer that holds something to give back, such as claimed
//! tasks, gives it back when dropped).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::data::any_connection::AnyConnection;
use crate::ground::error::{DalError, Interruption};
use crate::handle::dal::TaskExecutionDal;

/// One call of a kind that coalesces: what it asks. Its answer goes back
/// through the [`Reply`] it is queued with.
pub trait Call: Send + Sized + 'static {
    /// What the call is answered with when it does not fail.
    type Answer: Send + 'static;

    /// The most calls one batch takes.
    const MAX_BATCH: usize;

    /// True when `next` may run in one statement with `batch` (never empty;
    /// its first call is the oldest queued). The key of a kind (for a claim,
    /// the runner) is compared here; a call that does not fit stays queued,
    /// in its place, for a later batch.
    fn fits(batch: &[Queued<Self>], next: &Self) -> bool;

    /// Runs `batch` on `dal` and answers every call in it (with
    /// [`run_coalesced`], which answers them when no connection can be
    /// had).
    fn run(dal: TaskExecutionDal, batch: Vec<Queued<Self>>) -> impl Future<Output = ()> + Send;
}

/// A queued call and where its answer goes.
pub struct Queued<C: Call> {
    /// What the call asks.
    pub call: C,
    /// Where its answer goes.
    pub reply: Reply<C::Answer>,
}

/// Where the answer of one queued call goes: to its caller, if it still
/// waits.
pub struct Reply<T>(oneshot::Sender<Result<T, DalError>>);

impl<T> Reply<T> {
    /// Answers the call. A caller that stopped waiting never receives it:
    /// the outcome stands either way, and the answer is dropped (giving
    /// back what it holds, if anything).
    pub fn send(self, answer: Result<T, DalError>) {
        let _ = self.0.send(answer);
    }

    /// True when the caller no longer waits for the answer: such a call,
    /// found so when a batch is taken, is left out.
    fn abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// True when no call of `batch` has the `key` that `next` has: what
/// [`Call::fits`] says of a kind that takes one call per task in a batch
/// (a second call of a task waits for the next batch, and sees what the
/// first did).
pub fn distinct_by<C: Call, K: PartialEq>(
    batch: &[Queued<C>],
    next: &C,
    key: impl Fn(&C) -> K,
) -> bool {
    let next = key(next);
    batch.iter().all(|queued| key(&queued.call) != next)
}

/// Answers every call of `batch` with what `alone` gives for it, one call
/// after another, as each would run alone: what a batch does when its calls
/// cannot share a statement. `Err` for the pool (the calls keep their own
/// errors) when one of them lost the connection.
pub fn answer_alone<C: Call>(
    batch: impl IntoIterator<Item = Queued<C>>,
    mut alone: impl FnMut(&C) -> Result<C::Answer, DalError>,
) -> Result<(), DalError> {
    let mut lost = None;
    for Queued { call, reply } in batch {
        let answer = alone(&call);
        if answer.as_ref().is_err_and(DalError::is_connection_lost) {
            lost = Some(lost_in_batch());
        }
        reply.send(answer);
    }
    lost.map_or(Ok(()), Err)
}

/// The queue of one kind of call, and the turn to run its next batch.
struct Queue<C: Call> {
    calls: Mutex<VecDeque<Queued<C>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<C: Call> Default for Queue<C> {
    fn default() -> Self {
        Queue {
            calls: Mutex::new(VecDeque::new()),
            turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

impl<C: Call> Queue<C> {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Queued<C>>> {
        // Only pushed to and taken from: a panic elsewhere cannot leave it
        // half-changed.
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts calls that did not run back at the front, in their order.
    fn requeue(&self, calls: Vec<Queued<C>>) {
        let mut queue = self.lock();
        for call in calls.into_iter().rev() {
            queue.push_front(call);
        }
    }

    /// The oldest queued call and every later one that fits with it, in
    /// order, up to [`Call::MAX_BATCH`]; abandoned calls are dropped on the
    /// way.
    fn take_batch(&self) -> Vec<Queued<C>> {
        let mut queue = self.lock();
        let mut batch: Vec<Queued<C>> = Vec::new();
        let mut kept = VecDeque::with_capacity(queue.len());
        while let Some(queued) = queue.pop_front() {
            if queued.reply.abandoned() {
                continue;
            }
            if batch.len() < C::MAX_BATCH && (batch.is_empty() || C::fits(&batch, &queued.call)) {
                batch.push(queued);
            } else {
                kept.push_back(queued);
            }
        }
        *queue = kept;
        batch
    }
}

/// Queues `call` with the other calls of its kind on `dal` and returns its
/// answer: run at once if no batch of its kind is running, else in the next
/// batch, with every call queued meanwhile that fits, as this module's docs
/// say.
pub async fn coalesce<C: Call>(dal: &TaskExecutionDal, call: C) -> Result<C::Answer, DalError> {
    let (reply, mut answer) = oneshot::channel();
    let queue = dal.shared::<Queue<C>>();
    queue.lock().push_back(Queued {
        call,
        reply: Reply(reply),
    });
    loop {
        tokio::select! {
            biased;
            result = &mut answer => {
                return result.map_err(|_| DalError::Interrupted(Interruption::Aborted))?;
            }
            turn = Arc::clone(&queue.turn).lock_owned() => {
                let batch = queue.take_batch();
                if batch.is_empty() {
                    // This call went in a batch that answers it.
                    continue;
                }
                let dal = dal.clone();
                tokio::spawn(async move {
                    C::run(dal, batch).await;
                    drop(turn);
                });
            }
        }
    }
}

/// Runs `f` with `batch` on a pooled connection of `dal`; `f` answers every
/// call. An `Err` from `f` is for the pool only (a lost connection is
/// closed, as after any call); `f` has answered the calls by then.
///
/// When no connection can be had, `f` does not run: after a wait for a
/// connection every call answers with the same timeout; after another error
/// the first call gets it and the others go back to the front of their
/// queue to try again, as each would alone.
pub async fn run_coalesced<C, F>(dal: &TaskExecutionDal, batch: Vec<Queued<C>>, f: F)
where
    C: Call,
    F: FnOnce(&mut AnyConnection, Vec<Queued<C>>) -> Result<(), DalError> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Some(batch)));
    let taken = Arc::clone(&slot);
    let ran = dal
        .run(move |conn| {
            let batch = taken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            f(conn, batch)
        })
        .await;
    let left = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let (Err(error), Some(mut batch)) = (ran, left) else {
        // `f` ran and answered every call (or panicked, and the dropped
        // answers tell their callers so).
        return;
    };
    match error {
        DalError::Timeout { what, after } => {
            for queued in batch {
                queued.reply.send(Err(DalError::Timeout { what, after }));
            }
        }
        other => {
            if batch.is_empty() {
                return;
            }
            batch.remove(0).reply.send(Err(other));
            dal.shared::<Queue<C>>().requeue(batch);
        }
    }
}

/// The error of a call whose connection was lost under another call of its
/// batch: a lost connection, as the pool reads it.
pub fn lost_in_batch() -> DalError {
    DalError::Database(diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::ClosedConnection,
        Box::new(String::from(
            "the connection was lost under another call of the same batch",
        )),
    ))
}
