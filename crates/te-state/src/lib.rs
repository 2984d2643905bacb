//! Every status transition of a task execution, and the cancel, pause and
//! resume of a pipeline execution, each with its audit event(s) in one
//! transaction, as the [`TaskTransitions`] trait on [`TaskExecutionDal`].
//!
//! Each transition is one compare-and-set `UPDATE` whose `WHERE` names the
//! statuses it may start from (and, for a runner-guarded call, the runner that
//! must hold the claim), followed by its event, in one write transaction. A
//! transition from any other status is [`DalError::IllegalTransition`], an
//! unknown task [`DalError::NotFound`], and neither writes anything.
//!
//! Every transition bumps `updated_at`. Leaving `Running` clears
//! `sub_status`; reaching a terminal status (`Completed`, `Failed`,
//! `Skipped`) also clears the claim (`claimed_by`, `heartbeat_at`), so a
//! finished task never shows up as a stale claim.

mod finish;
mod pipeline;
mod sql;
mod transitions;

use te_core::toolkit::{distinct, is_one_statement, promote, validate, write_statement};
use te_core::{
    AnyConnection, Backend, CancelOutcome, DalError, DalFuture, SubStatus, TaskExecutionDal,
};
use uuid::Uuid;

/// Runs the batch transition `f` of `task_ids`: as one statement without a
/// surrounding transaction when it is one (a single task on PostgreSQL),
/// else in a write transaction.
async fn batch_write<F>(
    dal: &TaskExecutionDal,
    task_ids: Vec<Uuid>,
    f: F,
) -> Result<usize, DalError>
where
    F: FnOnce(&mut AnyConnection, &[Uuid]) -> Result<usize, DalError> + Send + 'static,
{
    let one = is_one_statement(&task_ids);
    let write = move |conn: &mut AnyConnection| f(conn, &task_ids);
    if one {
        write_statement(dal, write).await
    } else {
        dal.write(write).await
    }
}

/// Checks `reason` and runs `transition` of `task_id` with it, as one
/// statement: a task finished for a reason (skipped, abandoned).
async fn with_reason(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    reason: &str,
    transition: fn(&mut AnyConnection, Uuid, &str) -> Result<(), DalError>,
) -> Result<(), DalError> {
    validate::text("reason", reason)?;
    let reason = reason.to_owned();
    write_statement(dal, move |conn| transition(conn, task_id, &reason)).await
}

mod sealed {
    /// Keeps [`super::TaskTransitions`] implemented by `TaskExecutionDal`
    /// only, so that adding a method is not a breaking change.
    pub trait Sealed {}
    impl Sealed for te_core::TaskExecutionDal {}
}

/// Every status transition of a task execution, each with its audit event,
/// in one transaction, as methods on
/// [`TaskExecutionDal`].
///
/// | operation | from | to |
/// |---|---|---|
/// | `mark_ready` | `NotStarted`, `Ready` | `Ready` |
/// | `mark_started` | `Ready`, `Running` | `Running` |
/// | `mark_completed(_many)` | `Running` | `Completed` |
/// | `mark_failed` | `NotStarted`, `Ready`, `Running` | `Failed` |
/// | `mark_skipped` | `NotStarted`, `Ready` | `Skipped` |
/// | `mark_abandoned` | `NotStarted`, `Ready`, `Running` | `Failed` |
/// | `set_sub_status` | `Running` | `Running` |
/// | `reset_task_for_recovery` | `Running`, `Ready` | `Ready` (`Skipped` when its pipeline was cancelled) |
/// | `reset_retry_state` | any | `Ready` (refused when its pipeline was cancelled) |
///
/// No task of a cancelled pipeline execution is ever made `Ready`: a retry,
/// a recovery or a reset racing with the cancel either commits before it
/// (and the cancel skips the task) or sees it.
///
/// Every successful call writes exactly one event (even one that leaves the
/// status as it was, such as a repeated `mark_started`).
pub trait TaskTransitions: sealed::Sealed {
    /// `NotStarted` or `Ready` → `Ready` (clears `sub_status`); event `TaskReady`.
    /// A task of a cancelled pipeline execution is never made `Ready`:
    /// [`DalError::IllegalPipelineTransition`] from `Cancelled`, nothing
    /// written (the condition is part of the one `UPDATE`).
    fn mark_ready(&self, task_id: Uuid) -> impl DalFuture<()>;

    /// `Ready` or `Running` → `Running`; sets `started_at` unless already set,
    /// so calling it again is harmless. Event `TaskStarted`.
    fn mark_started(&self, task_id: Uuid) -> impl DalFuture<()>;

    /// `Running` → `Completed`: sets `completed_at`, clears `sub_status` and
    /// the claim. Event `TaskCompleted` (with `runner_id`).
    ///
    /// With `runner_id`, the update also requires that runner to hold the
    /// claim: `Ok(false)` (nothing written) when that runner does not hold
    /// it, whatever the task's status is now (recovered, re-claimed by
    /// another runner, finished). Otherwise `Ok(true)`, or the error of an
    /// illegal transition or unknown task.
    fn mark_completed(&self, task_id: Uuid, runner_id: Option<Uuid>) -> impl DalFuture<bool>;

    /// Completes every task of `task_ids` that is `Running` (and, with
    /// `runner_id`, held by that runner), as `mark_completed` does, in one
    /// transaction with one `TaskCompleted` event each; the others are left
    /// alone. Returns how many were completed. Unknown ids and duplicates are
    /// ignored; an empty input touches nothing.
    fn mark_completed_many(
        &self,
        task_ids: Vec<Uuid>,
        runner_id: Option<Uuid>,
    ) -> impl DalFuture<usize>;

    /// [`TaskTransitions::mark_ready`] for many tasks at once: each of
    /// `task_ids` that is `NotStarted` or `Ready` becomes `Ready` with one
    /// `TaskReady` event, all in one transaction (one `UPDATE` per
    /// 30,000 ids, then the events); others are left alone. Returns how many
    /// moved. Unknown ids and duplicates are ignored; an empty input touches
    /// nothing. What an engine calls to promote the dependents of a task.
    /// Tasks of a cancelled pipeline execution are left alone too (not
    /// counted, no error).
    fn mark_ready_many(&self, task_ids: Vec<Uuid>) -> impl DalFuture<usize>;

    /// `NotStarted`, `Ready` or `Running` → `Failed`: sets `completed_at`,
    /// `error_details` and `last_error` to `error`, clears `sub_status` and
    /// the claim. Event `TaskFailed` with `{"error": …}`. `runner_id` guards
    /// as in [`TaskTransitions::mark_completed`]: `Ok(false)`, nothing
    /// written, when that runner does not hold the claim.
    fn mark_failed(
        &self,
        task_id: Uuid,
        error: &str,
        runner_id: Option<Uuid>,
    ) -> impl DalFuture<bool>;

    /// `NotStarted` or `Ready` → `Skipped`: sets `completed_at`, stores
    /// `reason` in `error_details`, clears the claim. Event `TaskSkipped`
    /// with `{"reason": …}`.
    fn mark_skipped(&self, task_id: Uuid, reason: &str) -> impl DalFuture<()>;

    /// Any non-terminal status → `Failed` for good: `error_details` is
    /// `ABANDONED: <reason>` (see [`te_core::TaskExecution::is_abandoned`]), `last_error` is `reason`, `completed_at` set,
    /// `sub_status` and the claim cleared. Event `TaskAbandoned` with
    /// `{"reason": …}`.
    fn mark_abandoned(&self, task_id: Uuid, reason: &str) -> impl DalFuture<()>;

    /// Sets (or with `None` clears) the sub-status of a `Running` task; any
    /// other status is [`DalError::IllegalTransition`] (to `Running`), since a
    /// sub-status only refines `Running`. Event `SubStatusChanged` with
    /// `{"sub_status": …}`.
    fn set_sub_status(&self, task_id: Uuid, sub_status: Option<SubStatus>) -> impl DalFuture<()>;

    /// Any status → `Ready` with `attempt` 1: clears `started_at`,
    /// `completed_at`, `retry_at`, `error_details`, `last_error`,
    /// `sub_status` and the claim. Event `RetryStateReset`. A task whose
    /// pipeline execution was cancelled is
    /// [`DalError::IllegalPipelineTransition`] (from `Cancelled` to
    /// `Running`), nothing written: a cancelled pipeline runs nothing more.
    fn reset_retry_state(&self, task_id: Uuid) -> impl DalFuture<()>;

    /// `Running` or `Ready` → `Ready` after its runner was lost:
    /// `recovery_attempts + 1`, `last_recovery_at` now, clears `started_at`,
    /// `sub_status` and the claim. Event `RecoveryReset`.
    ///
    /// When the task's pipeline execution was cancelled (the task was still
    /// running then, so the cancel left it to its runner), the task becomes
    /// `Skipped` instead, as the cancel skipped the others: `recovery_attempts
    /// + 1`, `last_recovery_at` and `completed_at` now, the claim cleared, a
    /// reason in `error_details`, and a `TaskSkipped` event with that reason.
    /// Nothing would ever claim it `Ready`.
    fn reset_task_for_recovery(&self, task_id: Uuid) -> impl DalFuture<()>;

    /// Cancels pipeline execution `pipeline_id`, in one transaction: it
    /// becomes `Cancelled` (final; `completed_at` set) with a
    /// `PipelineStatusChanged` event, and each of its `NotStarted` or `Ready`
    /// tasks becomes `Skipped` with `reason` in `error_details` and a
    /// `TaskSkipped` event. None of its tasks is claimed once the cancel has
    /// committed. `Running` tasks are left to their runners, who learn of the
    /// cancel from `heartbeat` ([`te_core::HeartbeatResult::Cancelled`]) and
    /// still record their outcome.
    ///
    /// A cancel is final for everything: no task is created in the pipeline
    /// afterwards (`create`/`create_many` are refused, also when they race
    /// with the cancel), and no operation makes one of its tasks `Ready`. A
    /// paused pipeline is no longer paused once cancelled.
    /// `update_pipeline_status` to `Cancelled` is this same cancel.
    ///
    /// Returns how many tasks were skipped and how many are still running.
    /// Cancelling a cancelled pipeline skips what is left to skip (normally
    /// nothing: `skipped: 0`, no event). A `Completed` or `Failed` pipeline is
    /// [`DalError::IllegalPipelineTransition`]
    /// ([`te_core::PipelineOperation::Cancel`]; its message names the
    /// status and the refused `Cancelled`), an unknown one
    /// [`DalError::NotFound`]; nothing is written then.
    fn cancel_pipeline(&self, pipeline_id: Uuid, reason: &str) -> impl DalFuture<CancelOutcome>;

    /// Pauses pipeline execution `pipeline_id`: none of its tasks is claimed
    /// (plain or runner claims) by a claim that starts after the pause has
    /// committed, until it is resumed; running tasks finish normally. Writes
    /// a `PipelinePaused` event; pausing a paused pipeline does nothing (no
    /// event). A terminal pipeline is [`DalError::IllegalPipelineTransition`]
    /// ([`te_core::PipelineOperation::Pause`], message `cannot pause
    /// pipeline execution …: it is Completed`), an unknown one
    /// [`DalError::NotFound`]; nothing is written then.
    fn pause_pipeline(&self, pipeline_id: Uuid) -> impl DalFuture<()>;

    /// Resumes a paused pipeline execution: its ready tasks are claimable
    /// again, in their original order. Writes a `PipelineResumed` event;
    /// resuming a pipeline that is not paused does nothing (no event), and
    /// a terminal pipeline is never paused (reaching a terminal status
    /// clears the pause). A paused terminal pipeline (left by an earlier
    /// version) is [`DalError::IllegalPipelineTransition`]
    /// ([`te_core::PipelineOperation::Resume`], message `cannot resume
    /// pipeline execution …: it is …`), an unknown one
    /// [`DalError::NotFound`].
    fn resume_pipeline(&self, pipeline_id: Uuid) -> impl DalFuture<()>;
}

impl TaskTransitions for TaskExecutionDal {
    #[tracing::instrument(skip(self), fields(%task_id), err(level = "debug"))]
    async fn mark_ready(&self, task_id: Uuid) -> Result<(), DalError> {
        write_statement(self, move |conn| transitions::mark_ready(conn, task_id)).await
    }

    #[tracing::instrument(skip(self), fields(%task_id), err(level = "debug"))]
    async fn mark_started(&self, task_id: Uuid) -> Result<(), DalError> {
        write_statement(self, move |conn| transitions::mark_started(conn, task_id)).await
    }

    #[tracing::instrument(skip(self), fields(%task_id, runner_id = ?runner_id), err(level = "debug"))]
    async fn mark_completed(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
    ) -> Result<bool, DalError> {
        if self.backend() == Backend::Postgres {
            return finish::finish(self, task_id, runner_id, None).await;
        }
        write_statement(self, move |conn| {
            transitions::mark_completed(conn, task_id, runner_id)
        })
        .await
    }

    #[tracing::instrument(skip(self, task_ids), fields(count = task_ids.len(), runner_id = ?runner_id), err(level = "debug"))]
    async fn mark_completed_many(
        &self,
        task_ids: Vec<Uuid>,
        runner_id: Option<Uuid>,
    ) -> Result<usize, DalError> {
        let task_ids = distinct(task_ids);
        if task_ids.is_empty() {
            return Ok(0);
        }
        batch_write(self, task_ids, move |conn, ids| {
            transitions::mark_completed_many(conn, ids, runner_id)
        })
        .await
    }

    #[tracing::instrument(skip(self, task_ids), fields(count = task_ids.len()), err(level = "debug"))]
    async fn mark_ready_many(&self, task_ids: Vec<Uuid>) -> Result<usize, DalError> {
        let task_ids = distinct(task_ids);
        if task_ids.is_empty() {
            return Ok(0);
        }
        batch_write(self, task_ids, |conn, ids| promote(conn, ids, None)).await
    }

    #[tracing::instrument(skip(self, error), fields(%task_id, runner_id = ?runner_id), err(level = "debug"))]
    async fn mark_failed(
        &self,
        task_id: Uuid,
        error: &str,
        runner_id: Option<Uuid>,
    ) -> Result<bool, DalError> {
        validate::text("error", error)?;
        let error = error.to_owned();
        if self.backend() == Backend::Postgres {
            return finish::finish(self, task_id, runner_id, Some(error)).await;
        }
        write_statement(self, move |conn| {
            transitions::mark_failed(conn, task_id, &error, runner_id)
        })
        .await
    }

    #[tracing::instrument(skip(self, reason), fields(%task_id), err(level = "debug"))]
    async fn mark_skipped(&self, task_id: Uuid, reason: &str) -> Result<(), DalError> {
        with_reason(self, task_id, reason, transitions::mark_skipped).await
    }

    #[tracing::instrument(skip(self, reason), fields(%task_id), err(level = "debug"))]
    async fn mark_abandoned(&self, task_id: Uuid, reason: &str) -> Result<(), DalError> {
        with_reason(self, task_id, reason, transitions::mark_abandoned).await
    }

    #[tracing::instrument(skip(self), fields(%task_id, sub_status = ?sub_status), err(level = "debug"))]
    async fn set_sub_status(
        &self,
        task_id: Uuid,
        sub_status: Option<SubStatus>,
    ) -> Result<(), DalError> {
        write_statement(self, move |conn| {
            transitions::set_sub_status(conn, task_id, sub_status)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(%task_id), err(level = "debug"))]
    async fn reset_retry_state(&self, task_id: Uuid) -> Result<(), DalError> {
        // A transaction: the pipeline's row lock is held until it commits.
        self.write(move |conn| transitions::reset_retry_state(conn, task_id))
            .await
    }

    #[tracing::instrument(skip(self), fields(%task_id), err(level = "debug"))]
    async fn reset_task_for_recovery(&self, task_id: Uuid) -> Result<(), DalError> {
        // A transaction: the pipeline's row lock is held until it commits.
        self.write(move |conn| transitions::reset_task_for_recovery(conn, task_id))
            .await
    }

    #[tracing::instrument(skip(self, reason), fields(%pipeline_id), err(level = "debug"))]
    async fn cancel_pipeline(
        &self,
        pipeline_id: Uuid,
        reason: &str,
    ) -> Result<CancelOutcome, DalError> {
        validate::text("reason", reason)?;
        let reason = reason.to_owned();
        self.write(move |conn| pipeline::cancel(conn, pipeline_id, &reason))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id), err(level = "debug"))]
    async fn pause_pipeline(&self, pipeline_id: Uuid) -> Result<(), DalError> {
        self.write(move |conn| pipeline::set_paused(conn, pipeline_id, true))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id), err(level = "debug"))]
    async fn resume_pipeline(&self, pipeline_id: Uuid) -> Result<(), DalError> {
        self.write(move |conn| pipeline::set_paused(conn, pipeline_id, false))
            .await
    }
}
