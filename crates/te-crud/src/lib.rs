//! Create, read, list and update of task and pipeline executions for the
//! task-execution DAL, a pipeline's final context, and the pruning of
//! finished pipelines, as the [`TaskCrud`] trait on [`TaskExecutionDal`].

mod pipeline;
mod prune;
mod sql;
mod task;
mod update;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;
use te_core::toolkit::{now, validate, write_statement};
use te_core::{
    DalError, DalFuture, NewPipelineExecution, NewTaskExecution, PipelineExecution, PipelineStatus,
    PruneOutcome, TaskExecution, TaskExecutionDal,
};
use uuid::Uuid;

mod sealed {
    /// Keeps [`super::TaskCrud`] implemented by `TaskExecutionDal` only, so
    /// that adding a method is not a breaking change.
    pub trait Sealed {}
    impl Sealed for te_core::TaskExecutionDal {}
}

pub use update::TaskUpdate;

/// Create, read, list and update of task and pipeline executions, as methods
/// on [`TaskExecutionDal`].
///
/// Every write validates its input first ([`DalError::InvalidInput`] naming
/// the field, nothing written) and commits the row together with its audit
/// event, or nothing.
pub trait TaskCrud: sealed::Sealed {
    /// Creates a pipeline execution and its `PipelineCreated` event in one
    /// transaction. A non-empty initial `context` is stored in the contexts
    /// table and linked through `context_id`; an empty object (like no
    /// context) stores nothing and leaves `context_id` empty.
    /// A pipeline execution created with a terminal status has
    /// `completed_at` set to its creation time, as a terminal transition
    /// sets it (so `prune_pipelines` finds it).
    fn create_pipeline_execution(
        &self,
        new: NewPipelineExecution,
    ) -> impl DalFuture<PipelineExecution>;

    /// The pipeline execution `pipeline_id`; [`DalError::NotFound`] if absent.
    fn get_pipeline_execution(&self, pipeline_id: Uuid) -> impl DalFuture<PipelineExecution>;

    /// Moves pipeline execution `pipeline_id` to `status`, with its
    /// `PipelineStatusChanged` event, in one transaction; returns the updated
    /// row. A terminal status (`Completed`, `Failed`, `Cancelled`) stamps
    /// `completed_at` and clears the pause (a terminal pipeline is never
    /// held); `error_details` replaces the stored one (`None` clears it).
    ///
    /// - `Cancelled` is a cancel, the same as `cancel_pipeline` with
    ///   `error_details` as its reason: the `NotStarted`/`Ready` tasks
    ///   become `Skipped`, one `TaskSkipped` event each, and no task of the
    ///   pipeline is claimed or made `Ready` afterwards.
    /// - Setting the status the pipeline execution already has writes
    ///   nothing (no event, `completed_at` and `error_details` unchanged)
    ///   and returns the row as it is.
    /// - A pipeline execution that already reached a terminal status keeps
    ///   it: changing it is [`DalError::IllegalPipelineTransition`] and
    ///   writes nothing.
    ///
    /// [`DalError::NotFound`] if absent.
    fn update_pipeline_status(
        &self,
        pipeline_id: Uuid,
        status: PipelineStatus,
        error_details: Option<&str>,
    ) -> impl DalFuture<PipelineExecution>;

    /// Creates a task execution and its `TaskCreated` event in one
    /// transaction. A missing pipeline execution is [`DalError::NotFound`];
    /// a name already used in the pipeline execution is [`DalError::Conflict`].
    ///
    /// A cancelled pipeline execution takes no new task:
    /// [`DalError::IllegalPipelineTransition`] (from `Cancelled`,
    /// [`te_core::PipelineOperation::CreateTasks`]), nothing written. This
    /// holds when the creation races with the cancel too: the creation reads
    /// the pipeline's row with a lock that conflicts with the cancel's
    /// (`FOR SHARE` on PostgreSQL; SQLite's writes are serialized), so
    /// either it commits first and the cancel skips what it created, or it
    /// sees the cancel and is refused. On PostgreSQL the lock, the check,
    /// the insert and the event are one statement, sent without
    /// `BEGIN`/`COMMIT`.
    fn create(&self, new: NewTaskExecution) -> impl DalFuture<TaskExecution>;

    /// Creates many task executions and one `TaskCreated` event each, in one
    /// transaction: all of them or none (a bad row, a duplicate name or a
    /// missing pipeline execution writes nothing). Returned in input order.
    /// An empty input returns an empty vector without touching the database.
    /// A row of a cancelled pipeline execution refuses the whole call, as
    /// [`TaskCrud::create`] says. On PostgreSQL the whole call is one
    /// statement of fixed text with one array parameter per column,
    /// whatever the number of rows.
    fn create_many(&self, new: Vec<NewTaskExecution>) -> impl DalFuture<Vec<TaskExecution>>;

    /// The task execution `task_id`; [`DalError::NotFound`] if absent.
    fn get_by_id(&self, task_id: Uuid) -> impl DalFuture<TaskExecution>;

    /// Every task execution of `pipeline_id`, ordered by `(created_at, id)`;
    /// empty when the pipeline execution has none (or does not exist).
    fn get_all_tasks_for_pipeline(&self, pipeline_id: Uuid) -> impl DalFuture<Vec<TaskExecution>>;

    /// Changes the fields of `update` that are `Some`, bumps `updated_at` and
    /// writes a `TaskUpdated` event, in one transaction; returns the updated
    /// row. Any status may be updated. [`DalError::NotFound`] if absent.
    fn update_task(&self, task_id: Uuid, update: TaskUpdate) -> impl DalFuture<TaskExecution>;

    /// Stores `value` (a JSON object; `{}` is stored like any other) as the
    /// final context of `pipeline_id` and returns the stored context's id,
    /// with a `PipelineFinalContextSet` event, in one transaction. Setting it
    /// again replaces it (the earlier context row is deleted). Any status is
    /// accepted. Not an object: [`DalError::InvalidInput`]; unknown pipeline
    /// execution: [`DalError::NotFound`]; nothing is written then.
    fn set_pipeline_final_context(&self, pipeline_id: Uuid, value: &Value) -> impl DalFuture<Uuid>;

    /// Deletes terminal pipeline executions (`Completed`, `Failed`,
    /// `Cancelled`) whose `completed_at` is before `finished_before`, with
    /// their tasks, the tasks' metadata, the pipeline's initial and final
    /// contexts, the tasks' output contexts and every audit event of the
    /// pipeline, and returns how many rows of each were deleted.
    ///
    /// Works in transactions of at most `batch_size` pipelines (and at most
    /// 1,000), one after another until none is left, so claims and other
    /// writes keep flowing in between. Never touches a pipeline that is not
    /// terminal, nor a terminal one with a task still `Running` (such as a
    /// cancelled pipeline whose runners have not finished): it is pruned once
    /// they finish. `batch_size` 0, or an instant before the earliest both
    /// backends store (`validate::earliest_instant`), is
    /// [`DalError::InvalidInput`].
    fn prune_pipelines(
        &self,
        finished_before: DateTime<Utc>,
        batch_size: usize,
    ) -> impl DalFuture<PruneOutcome>;
}

/// The arguments of [`TaskCrud::prune_pipelines`] checked exactly as it
/// checks them, without touching the database: `batch_size` 0, or an
/// instant before the earliest both backends store, is
/// [`DalError::InvalidInput`]. For a dry run that must refuse what the real
/// run refuses.
pub fn check_prune_arguments(
    finished_before: DateTime<Utc>,
    batch_size: usize,
) -> Result<(), DalError> {
    if batch_size == 0 {
        return Err(DalError::invalid("batch_size", "must be at least 1"));
    }
    validate::instant("finished_before", finished_before)
}

impl TaskCrud for TaskExecutionDal {
    #[tracing::instrument(skip(self, new), fields(pipeline_name = %new.pipeline_name))]
    async fn create_pipeline_execution(
        &self,
        new: NewPipelineExecution,
    ) -> Result<PipelineExecution, DalError> {
        if let Err(err) = new.validate() {
            validate::discard(new.context);
            return Err(err);
        }
        self.write(move |conn| pipeline::create(conn, new)).await
    }

    #[tracing::instrument(skip(self), fields(pipeline_id = %pipeline_id))]
    async fn get_pipeline_execution(
        &self,
        pipeline_id: Uuid,
    ) -> Result<PipelineExecution, DalError> {
        self.run(move |conn| pipeline::get(conn, pipeline_id)).await
    }

    #[tracing::instrument(skip(self, error_details), fields(pipeline_id = %pipeline_id, status = %status))]
    async fn update_pipeline_status(
        &self,
        pipeline_id: Uuid,
        status: PipelineStatus,
        error_details: Option<&str>,
    ) -> Result<PipelineExecution, DalError> {
        if let Some(text) = error_details {
            validate::text("error_details", text)?;
        }
        let error_details = error_details.map(str::to_owned);
        self.write(move |conn| pipeline::set_status(conn, pipeline_id, status, error_details))
            .await
    }

    #[tracing::instrument(skip(self, new), fields(pipeline_id = %new.pipeline_execution_id, task_name = %new.task_name))]
    async fn create(&self, new: NewTaskExecution) -> Result<TaskExecution, DalError> {
        if let Err(err) = new.validate() {
            // A refused value may be nested too deeply to drop recursively.
            validate::discard([new.trigger_rules, new.task_configuration]);
            return Err(err);
        }
        let row = new.into_row(now());
        // One statement on PostgreSQL, no transaction around it; SQLite's
        // group commit otherwise.
        write_statement(self, move |conn| task::create_one(conn, &row).map(|()| row)).await
    }

    #[tracing::instrument(skip(self, new), fields(count = new.len()))]
    async fn create_many(
        &self,
        new: Vec<NewTaskExecution>,
    ) -> Result<Vec<TaskExecution>, DalError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(err) = task::validate_all(&new) {
            // A refused value may be nested too deeply to drop recursively.
            validate::discard(
                new.into_iter()
                    .flat_map(|task| [task.trigger_rules, task.task_configuration]),
            );
            return Err(err);
        }
        let pipeline_ids: BTreeSet<Uuid> = new.iter().map(|n| n.pipeline_execution_id).collect();
        let locked: Vec<Uuid> = pipeline_ids.iter().copied().collect();
        let now = now();
        let rows: Vec<TaskExecution> = new.into_iter().map(|n| n.into_row(now)).collect();
        // Locks the pipelines, refuses a cancelled (or missing) one and holds
        // off a cancel of it until this commits: one statement on
        // PostgreSQL, no transaction around it; SQLite's group commit
        // otherwise.
        match write_statement(self, move |conn| {
            task::create_many(conn, &rows, &locked).map(|()| rows)
        })
        .await
        {
            Err(err) if err.is_foreign_key_violation() => {
                // The transaction rolled back; say which pipeline is missing.
                let missing = self
                    .run(move |conn| task::missing_pipeline(conn, pipeline_ids))
                    .await?;
                Err(missing.map_or(err, DalError::pipeline_not_found))
            }
            other => other,
        }
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id))]
    async fn get_by_id(&self, task_id: Uuid) -> Result<TaskExecution, DalError> {
        self.run(move |conn| task::get(conn, task_id)).await
    }

    #[tracing::instrument(skip(self), fields(pipeline_id = %pipeline_id))]
    async fn get_all_tasks_for_pipeline(
        &self,
        pipeline_id: Uuid,
    ) -> Result<Vec<TaskExecution>, DalError> {
        self.run(move |conn| task::for_pipeline(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self, update), fields(task_id = %task_id))]
    async fn update_task(
        &self,
        task_id: Uuid,
        update: TaskUpdate,
    ) -> Result<TaskExecution, DalError> {
        if let Err(err) = update.validate() {
            validate::discard(
                update
                    .trigger_rules
                    .into_iter()
                    .chain(update.task_configuration),
            );
            return Err(err);
        }
        self.write(move |conn| update::apply(conn, task_id, update))
            .await
    }

    #[tracing::instrument(skip(self, value), fields(%pipeline_id))]
    async fn set_pipeline_final_context(
        &self,
        pipeline_id: Uuid,
        value: &Value,
    ) -> Result<Uuid, DalError> {
        validate::json_object("value", value)?;
        let value = value.clone();
        self.write(move |conn| pipeline::set_final_context(conn, pipeline_id, &value))
            .await
    }

    #[tracing::instrument(skip(self), fields(%finished_before, batch_size))]
    async fn prune_pipelines(
        &self,
        finished_before: DateTime<Utc>,
        batch_size: usize,
    ) -> Result<PruneOutcome, DalError> {
        check_prune_arguments(finished_before, batch_size)?;
        let mut total = PruneOutcome::default();
        loop {
            let batch = self
                .write(move |conn| prune::prune_batch(conn, finished_before, batch_size))
                .await?;
            if batch.pipelines == 0 {
                return Ok(total);
            }
            total.add(batch);
        }
    }
}
