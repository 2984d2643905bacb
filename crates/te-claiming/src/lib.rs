//! Atomic claiming, runner claims, heartbeats, release, stale claims and retry scheduling for the task-execution DAL.
//!
//! Everything here is a method of [`TaskClaiming`], implemented for
//! [`TaskExecutionDal`]. The claim is the one place where the SQL differs by
//! backend (the `claim` module); every other operation is written once.
//!
//! # Claims and runner claims
//!
//! - A *claim* ([`TaskClaiming::claim_ready_task`]) moves `Ready` tasks to
//!   `Running` (sub-status `Active`, `started_at` now). No task is ever handed
//!   to two callers: on PostgreSQL the claim is one statement that locks its
//!   candidates with `FOR UPDATE SKIP LOCKED` and updates them; on SQLite it
//!   runs inside a write transaction taken up front (`BEGIN IMMEDIATE`).
//! - A *runner claim* (`claimed_by`, `heartbeat_at`) records which runner works
//!   on a task, so that a runner that dies can be noticed
//!   ([`TaskClaiming::find_stale_claims`]). A `Ready` task that a runner claimed
//!   with [`TaskClaiming::claim_for_runner`] is reserved for that runner: only
//!   [`TaskClaiming::claim_ready_tasks_for_runner`] with the same runner claims
//!   it, until the claim is released.
//!
//! # Queues, delays and limits
//!
//! - Every task has a `queue` (default `"default"`):
//!   [`TaskClaiming::claim_ready_task_from`] and
//!   [`TaskClaiming::claim_ready_tasks_for_runner_from`] take tasks of the
//!   queues named only, walking an index that leads with the queue;
//!   [`TaskClaiming::claim_ready_task`] takes tasks of every queue.
//! - A task's `run_after` holds it back as a retry's `retry_at` does.
//! - A pipeline's `max_running` bounds how many of its tasks are `Running`
//!   or reserved by a runner at once, whatever the claim form, the number of
//!   workers and hosts: a batch claim takes what the limit allows and the
//!   rest of the batch from other pipelines. Tasks made `Running` by
//!   `mark_started`, or created `Running`, are the engine's direct writes,
//!   not claims: they count toward the limit but are not refused by it.

mod claim;
mod handout;
mod limit;
mod sql;
#[doc(hidden)]
pub use sql::explain::{ClaimPlan, ClaimReads, explain_claim, explain_claim_from};
mod retry;
mod runner;
mod stale;

use std::time::Duration;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use handout::{ClaimKey, Claimed, GiveBack};
use te_core::toolkit::{
    validate, wait_for_wakeup, write_statement, write_statement_without_wakeup,
};
use te_core::{
    Backend, ClaimResult, DalError, DalFuture, HeartbeatResult, RunnerClaimResult, StaleClaim,
    TaskExecution, TaskExecutionDal,
};
use uuid::Uuid;

/// Claims up to `limit` tasks, for `runner` if given, of `queues` (every
/// queue when `None`), after checking `queues` and `limit`: a claim of one
/// task is coalesced with concurrent ones of the same key on PostgreSQL (a
/// claim of several is already a batch, and runs at once), every claim goes
/// through the group commit on SQLite. The tasks are the caller's only once
/// this returns: a call dropped before gives them back (see [`handout`]).
async fn claim(
    dal: &TaskExecutionDal,
    runner: Option<Uuid>,
    queues: Option<&[&str]>,
    limit: usize,
) -> Result<Vec<ClaimResult>, DalError> {
    let queues = queues
        .map(|queues| validate::queues("queues", queues))
        .transpose()?;
    let limit = validate::limit("limit", limit)?;
    let key = ClaimKey { runner, queues };
    let owner = dal.clone();
    let back: GiveBack = Arc::new(move |ids, key, claimed_at| {
        Box::pin(give_back_all(owner.clone(), ids, key, claimed_at))
    });
    if dal.backend() == Backend::Postgres && limit == 1 {
        return handout::coalesced_claim(dal, key, limit, back).await;
    }
    let runtime = tokio::runtime::Handle::current();
    write_statement_without_wakeup(dal, move |conn| {
        let claimed_at = te_core::toolkit::now();
        claim::claim_ready(conn, key.runner, limit, &key.queues, claimed_at)
            .map(|tasks| Claimed::new(tasks, back, runtime, key, claimed_at))
    })
    .await
    .map(Claimed::take)
}

/// Gives back tasks claimed for `key` at `claimed_at` whose caller never
/// took them, each in a write of its own (see [`handout::give_back`]).
async fn give_back_all(
    dal: TaskExecutionDal,
    ids: Vec<Uuid>,
    key: ClaimKey,
    claimed_at: DateTime<Utc>,
) {
    for id in ids {
        // A task that cannot be given back now stays `Running` until its
        // claim is recovered, as after a crash.
        let _ = dal
            .write(move |conn| handout::give_back(conn, id, key.runner, claimed_at))
            .await;
    }
}

mod sealed {
    /// Keeps [`super::TaskClaiming`] implemented by `TaskExecutionDal` only,
    /// so that adding a method is not a breaking change.
    pub trait Sealed {}
    impl Sealed for te_core::TaskExecutionDal {}
}

/// Atomic claiming, runner claims, heartbeats, release, stale claims and retry scheduling, as methods on [`TaskExecutionDal`].
pub trait TaskClaiming: sealed::Sealed {
    /// Claims up to `limit` `Ready` tasks whose `retry_at` is unset or has
    /// passed, not reserved by a runner claim, and whose pipeline execution
    /// is neither paused nor cancelled: highest `priority` first, then
    /// oldest (by `created_at`, then `id`).
    ///
    /// Each claimed task is moved to `Running` with sub-status `Active`,
    /// `started_at` and `updated_at` set to now, and gets one `TaskClaimed`
    /// event, all in one transaction. No task is ever returned to two callers,
    /// whatever the number of connections, handles or processes claiming at
    /// once. The result is in that claim order; it is empty when nothing is
    /// claimable.
    ///
    /// Concurrent claims of one task (`limit` 1) on one handle may share a
    /// statement (PostgreSQL) or a transaction (SQLite). A call dropped after
    /// its claim committed gives its tasks back, as a recovery would
    /// (`RecoveryReset`, with the reason in its data; `Skipped` if the
    /// pipeline was cancelled meanwhile), unless they have moved on since.
    ///
    /// `limit` must be between 1 and 10,000, else [`DalError::InvalidInput`].
    fn claim_ready_task(&self, limit: usize) -> impl DalFuture<Vec<ClaimResult>>;

    /// As [`TaskClaiming::claim_ready_task`], and in the same statement sets
    /// `claimed_by` to `runner_id` and `heartbeat_at` to now on every claimed
    /// task. Tasks reserved by another runner are not claimed; tasks reserved
    /// by this runner are. The `TaskClaimed` events carry `runner_id`.
    fn claim_ready_tasks_for_runner(
        &self,
        runner_id: Uuid,
        limit: usize,
    ) -> impl DalFuture<Vec<ClaimResult>>;

    /// As [`TaskClaiming::claim_ready_task`], taking only tasks whose `queue`
    /// is one of `queues` (claim order across them: priority, then age).
    /// PostgreSQL: still one statement, walking
    /// `task_executions_queue_ready_idx` one queue at a time.
    ///
    /// `queues` empty, or a name that is not valid (see
    /// [`validate::name`]: empty, a NUL byte, too long), is
    /// [`DalError::InvalidInput`], as is a `limit` outside 1 to 10,000;
    /// nothing is written then.
    fn claim_ready_task_from(
        &self,
        queues: &[&str],
        limit: usize,
    ) -> impl DalFuture<Vec<ClaimResult>>;

    /// As [`TaskClaiming::claim_ready_tasks_for_runner`], taking only tasks
    /// of `queues`, with the checks of [`TaskClaiming::claim_ready_task_from`].
    fn claim_ready_tasks_for_runner_from(
        &self,
        runner_id: Uuid,
        queues: &[&str],
        limit: usize,
    ) -> impl DalFuture<Vec<ClaimResult>>;

    /// Gives `runner_id` the runner claim on a `Ready` or `Running` task, as a
    /// compare-and-set: it succeeds when the task is unclaimed or already
    /// claimed by `runner_id` (which refreshes `heartbeat_at`), and writes a
    /// `RunnerClaimed` event.
    ///
    /// [`RunnerClaimResult::AlreadyClaimed`] when another runner holds the claim,
    /// the task is in any other status, or it is `Ready` in a paused (or
    /// cancelled) pipeline execution, which gives no task to anyone, or in a
    /// pipeline whose `max_running` is reached (a reserved task counts
    /// toward it); nothing is written then. [`DalError::NotFound`] for an
    /// unknown task.
    fn claim_for_runner(&self, task_id: Uuid, runner_id: Uuid)
    -> impl DalFuture<RunnerClaimResult>;

    /// Refreshes `heartbeat_at` of a task `runner_id` holds the claim on, while
    /// the task is `Ready` or `Running`.
    ///
    /// [`HeartbeatResult::ClaimLost`] when the runner no longer holds the claim
    /// (released, taken by another runner, or the task finished): the runner
    /// should stop working on it. [`HeartbeatResult::Cancelled`] when the
    /// claim is held (and refreshed) but the task's pipeline execution was
    /// cancelled: the runner should stop; its guarded `mark_completed` /
    /// `mark_failed` still record the outcome. [`DalError::NotFound`] for an
    /// unknown task. Heartbeats write no event and leave `updated_at` alone.
    fn heartbeat(&self, task_id: Uuid, runner_id: Uuid) -> impl DalFuture<HeartbeatResult>;

    /// Clears `claimed_by` and `heartbeat_at` of a task, whatever its status,
    /// and writes a `ClaimReleased` event naming the runner that held it.
    ///
    /// Releasing an unclaimed task does nothing (no event).
    /// [`DalError::NotFound`] for an unknown task.
    fn release_runner_claim(&self, task_id: Uuid) -> impl DalFuture<()>;

    /// Claims whose runner went silent: `Ready` or `Running` tasks with a
    /// runner claim whose `heartbeat_at` is older than `threshold` ago, oldest
    /// heartbeat first (then by id). Finished (`Completed`, `Failed`,
    /// `Skipped`) and `NotStarted` tasks are never returned, nor are claims
    /// without any heartbeat (which the operations here never write).
    ///
    /// A `threshold` reaching before the earliest instant the backends store
    /// ([`te_core::toolkit::validate::earliest_instant`]), up to [`Duration::MAX`],
    /// finds nothing (an empty vec) on both backends, without a query.
    fn find_stale_claims(&self, threshold: Duration) -> impl DalFuture<Vec<StaleClaim>>;

    /// Schedules another attempt of a `Running` or `Failed` task: moves it to
    /// `Ready` with `retry_at` (it is not claimable before then) and `attempt`
    /// set to `new_attempt`; clears `sub_status`, `started_at`, `completed_at`
    /// and the runner claim; clears `error_details` and keeps `last_error`. Writes a
    /// `RetryScheduled` event with `{"retry_at", "attempt"}`, in the same
    /// transaction.
    ///
    /// `new_attempt` must be at least 1 and at most the task's `max_attempts`,
    /// and `retry_at` not before [`te_core::toolkit::validate::earliest_instant`]
    /// (it is stored to the microsecond), else [`DalError::InvalidInput`]; from any other status
    /// [`DalError::IllegalTransition`]; [`DalError::NotFound`] for an unknown
    /// task; a task whose pipeline execution was cancelled is
    /// [`DalError::IllegalPipelineTransition`] (from `Cancelled` to
    /// `Running`: a retry would make the pipeline run again). In every error
    /// case nothing is written. A retry racing with a cancel of its pipeline
    /// either commits first (and the cancel skips the task) or is refused:
    /// a cancelled pipeline never keeps a `Ready` task.
    fn schedule_retry(
        &self,
        task_id: Uuid,
        retry_at: DateTime<Utc>,
        new_attempt: i32,
    ) -> impl DalFuture<()>;

    /// `Ready` tasks with a `retry_at` that has passed, earliest `retry_at`
    /// first (then by `id`).
    fn get_ready_for_retry(&self) -> impl DalFuture<Vec<TaskExecution>>;

    /// Waits until a task may have become claimable, then returns `true`; or
    /// returns `false` once `timeout` has passed. A hint, never a promise:
    /// claim next, and expect to find nothing sometimes.
    ///
    /// - PostgreSQL: the database sends a `NOTIFY` on channel
    ///   `te_task_ready` in the same transaction as every write that leaves a
    ///   task `Ready` (a create, `mark_ready`, `mark_ready_many`, a retry, a
    ///   recovery, a reset) or resumes a paused pipeline, whoever wrote it.
    ///   Each handle listens on one dedicated connection, opened by its first
    ///   call to this method and reopened after an error (every waiter is
    ///   then woken, as a notification may have been missed). Each call
    ///   sends a marker notification of its own first (one round trip) and
    ///   counts only what the listener reads after it. Behind a
    ///   transaction-mode pooler it listens on `listen_url`, or without one
    ///   polls for new audit events every 250 ms.
    /// - SQLite: every successful write through this handle (claims aside)
    ///   wakes its waiters at once; writes by other handles and processes are
    ///   noticed within 250 ms through `PRAGMA data_version`.
    ///
    /// It returns `true` only for a wake-up that arrived after the call
    /// began; when nothing is written meanwhile it returns `false` at the
    /// timeout, never before. The caller's own writes answered before the
    /// call began never wake it, so a worker loop does not spin on its own
    /// writes: on SQLite a write wakes the waiters before it is answered,
    /// and the `data_version` baseline is read after the call began; on
    /// PostgreSQL notifications arrive in commit order, so those of the
    /// caller's answered writes come before its marker and are not counted,
    /// however late the listener reads them. A `timeout` over 24 hours is
    /// refused with
    /// [`DalError::InvalidInput`].
    ///
    /// It also returns `true` by the time a `Ready` task held back by its
    /// `run_after` or its retry's `retry_at` becomes due: a timer set, once
    /// the wait is in place, on the earliest such instant (one query of two
    /// partial indexes), not a poll. It may return at an instant that
    /// leaves the task still held (the task waits for both), never later.
    fn wait_for_ready(&self, timeout: Duration) -> impl DalFuture<bool>;

    /// As [`TaskClaiming::wait_for_ready`], for work of `queues`: its timer
    /// is set on the earliest due instant of those queues' delayed tasks
    /// (a wake-up by a write of any queue may still wake it: a hint).
    /// `queues` is checked as by [`TaskClaiming::claim_ready_task_from`].
    fn wait_for_ready_from(&self, queues: &[&str], timeout: Duration) -> impl DalFuture<bool>;
}

impl TaskClaiming for TaskExecutionDal {
    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn claim_ready_task(&self, limit: usize) -> Result<Vec<ClaimResult>, DalError> {
        claim(self, None, None, limit).await
    }

    #[tracing::instrument(skip(self), fields(%runner_id), err(level = "debug"))]
    async fn claim_ready_tasks_for_runner(
        &self,
        runner_id: Uuid,
        limit: usize,
    ) -> Result<Vec<ClaimResult>, DalError> {
        claim(self, Some(runner_id), None, limit).await
    }

    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn claim_ready_task_from(
        &self,
        queues: &[&str],
        limit: usize,
    ) -> Result<Vec<ClaimResult>, DalError> {
        claim(self, None, Some(queues), limit).await
    }

    #[tracing::instrument(skip(self), fields(%runner_id), err(level = "debug"))]
    async fn claim_ready_tasks_for_runner_from(
        &self,
        runner_id: Uuid,
        queues: &[&str],
        limit: usize,
    ) -> Result<Vec<ClaimResult>, DalError> {
        claim(self, Some(runner_id), Some(queues), limit).await
    }

    #[tracing::instrument(skip(self), fields(%task_id, %runner_id), err(level = "debug"))]
    async fn claim_for_runner(
        &self,
        task_id: Uuid,
        runner_id: Uuid,
    ) -> Result<RunnerClaimResult, DalError> {
        let Some(max_running) = self
            .run(move |conn| limit::limit_of_task(conn, task_id))
            .await?
        else {
            return write_statement(self, move |conn| {
                runner::claim_for_runner(conn, task_id, runner_id)
            })
            .await;
        };
        // A limited pipeline: the count and the claim in one transaction,
        // under the pipeline's limit lock.
        self.write(move |conn| {
            if limit::runner_claim_overfills(conn, task_id, max_running)? {
                return Ok(RunnerClaimResult::AlreadyClaimed);
            }
            runner::claim_for_runner(conn, task_id, runner_id)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(%task_id, %runner_id), err(level = "debug"))]
    async fn heartbeat(&self, task_id: Uuid, runner_id: Uuid) -> Result<HeartbeatResult, DalError> {
        write_statement(self, move |conn| {
            runner::heartbeat(conn, task_id, runner_id)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(%task_id), err(level = "debug"))]
    async fn release_runner_claim(&self, task_id: Uuid) -> Result<(), DalError> {
        write_statement(self, move |conn| runner::release(conn, task_id)).await
    }

    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn find_stale_claims(&self, threshold: Duration) -> Result<Vec<StaleClaim>, DalError> {
        self.run(move |conn| stale::find_stale_claims(conn, threshold))
            .await
    }

    #[tracing::instrument(skip(self), fields(%task_id, %retry_at), err(level = "debug"))]
    async fn schedule_retry(
        &self,
        task_id: Uuid,
        retry_at: DateTime<Utc>,
        new_attempt: i32,
    ) -> Result<(), DalError> {
        validate::at_least_one("new_attempt", new_attempt)?;
        validate::instant("retry_at", retry_at)?;
        // A transaction, not one statement: the pipeline's row lock must be
        // held until the retry commits.
        self.write(move |conn| retry::schedule_retry(conn, task_id, retry_at, new_attempt))
            .await
    }

    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn get_ready_for_retry(&self) -> Result<Vec<TaskExecution>, DalError> {
        self.run(retry::ready_for_retry).await
    }

    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn wait_for_ready(&self, timeout: Duration) -> Result<bool, DalError> {
        wait_for_wakeup(self, timeout, || {
            self.run(|conn| limit::next_due(conn, &None, te_core::toolkit::now()))
        })
        .await
    }

    #[tracing::instrument(skip(self), err(level = "debug"))]
    async fn wait_for_ready_from(
        &self,
        queues: &[&str],
        timeout: Duration,
    ) -> Result<bool, DalError> {
        let queues = Some(validate::queues("queues", queues)?);
        wait_for_wakeup(self, timeout, || {
            self.run(move |conn| limit::next_due(conn, &queues, te_core::toolkit::now()))
        })
        .await
    }
}
