//! Read-only filtering, status, completion, recovery and retry queries, and
//! the audit log for the task-execution DAL, as the [`TaskQueries`] trait on
//! [`TaskExecutionDal`].
//!
//! Every method runs one query (batch forms: one per
//! [`te_core::toolkit::batch::MAX_IN_LIST`] inputs, none for an empty input) and
//! writes nothing.

mod filter;
mod pipeline_filter;
#[doc(hidden)]
pub mod queries;
mod sql;

use std::collections::HashMap;

use te_core::toolkit::validate;
use te_core::{
    DalError, DalFuture, ExecutionEvent, PipelineExecution, RetryStats, TaskExecution,
    TaskExecutionDal, TaskStatus,
};
use uuid::Uuid;

pub use filter::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TaskFilter};
pub use pipeline_filter::{DEFAULT_PIPELINE_PAGE_SIZE, MAX_PIPELINE_PAGE_SIZE, PipelineFilter};

mod sealed {
    /// Keeps [`super::TaskQueries`] implemented by `TaskExecutionDal` only, so
    /// that adding a method is not a breaking change.
    pub trait Sealed {}
    impl Sealed for te_core::TaskExecutionDal {}
}

/// Read-only filtering, status, completion, recovery and retry queries, and
/// the audit log, as methods on [`TaskExecutionDal`].
///
/// Lists of task executions are ordered by `(created_at, id)`; lists of
/// events by their `sequence`.
pub trait TaskQueries: sealed::Sealed {
    /// The `NotStarted` tasks of `pipeline_id` (empty for an unknown pipeline execution).
    fn get_pending_tasks(&self, pipeline_id: Uuid) -> impl DalFuture<Vec<TaskExecution>>;

    /// The `NotStarted` tasks of all of `pipeline_ids`, each once. An empty
    /// input returns an empty vector without a query; any number of ids works.
    fn get_pending_tasks_batch(
        &self,
        pipeline_ids: Vec<Uuid>,
    ) -> impl DalFuture<Vec<TaskExecution>>;

    /// True when `pipeline_id` has tasks and every one is terminal
    /// (`Completed`, `Failed`, `Skipped`). A pipeline execution without tasks
    /// is not complete (its tasks may not be created yet);
    /// [`DalError::NotFound`] for an unknown one.
    fn check_pipeline_completion(&self, pipeline_id: Uuid) -> impl DalFuture<bool>;

    /// True when any task of `pipeline_id` was abandoned (`Failed`, with
    /// `error_details` starting with
    /// [`TaskExecution::ABANDONED_PREFIX`], see [`TaskExecution::is_abandoned`]); [`DalError::NotFound`] for an
    /// unknown pipeline execution.
    fn check_pipeline_failure(&self, pipeline_id: Uuid) -> impl DalFuture<bool>;

    /// The status of task `task_name` of `pipeline_id`: [`DalError::NotFound`]
    /// when there is none, [`DalError::InvalidInput`] for an empty name.
    fn get_task_status(&self, pipeline_id: Uuid, task_name: &str) -> impl DalFuture<TaskStatus>;

    /// The status of each of `task_names` that names a task of `pipeline_id`;
    /// other names are absent from the map. An empty name is
    /// [`DalError::InvalidInput`]; an empty input returns an empty map
    /// without a query; any number of names works.
    fn get_task_statuses_batch(
        &self,
        pipeline_id: Uuid,
        task_names: Vec<String>,
    ) -> impl DalFuture<HashMap<String, TaskStatus>>;

    /// For each of `pipeline_ids` (every one a key; an empty map when it has
    /// no tasks or does not exist), its tasks' statuses by name: one query
    /// for any number of pipelines (up to [`te_core::toolkit::batch::MAX_IN_LIST`]),
    /// grouped in memory.
    fn get_all_task_statuses_for_pipelines(
        &self,
        pipeline_ids: Vec<Uuid>,
    ) -> impl DalFuture<HashMap<Uuid, HashMap<String, TaskStatus>>>;

    /// How many tasks, of any pipeline, are `Running`.
    fn count_running_tasks(&self) -> impl DalFuture<i64>;

    /// How many tasks are in each status, counted by the database (`GROUP
    /// BY`): of `pipeline_id` when given, else of every pipeline. Every
    /// status is a key (0 when no task has it).
    fn count_tasks_by_status(
        &self,
        pipeline_id: Option<Uuid>,
    ) -> impl DalFuture<HashMap<TaskStatus, i64>>;

    /// Every `Running` task of any pipeline: the candidates for recovery
    /// after a restart.
    fn get_orphaned_tasks(&self) -> impl DalFuture<Vec<TaskExecution>>;

    /// The retry statistics of `pipeline_id`, computed by the database in
    /// one aggregate query without loading any row; all zeros when it has no
    /// tasks, [`DalError::NotFound`] for an unknown pipeline execution.
    fn get_retry_stats(&self, pipeline_id: Uuid) -> impl DalFuture<RetryStats>;

    /// The tasks of `pipeline_id` that are `Failed` with `attempt >= max_attempts`.
    fn get_exhausted_retry_tasks(&self, pipeline_id: Uuid) -> impl DalFuture<Vec<TaskExecution>>;

    /// One page of the task executions `filter` selects, ordered by
    /// `(created_at, id)`, with keyset pagination (see [`TaskFilter`]).
    /// A negative limit, a limit above [`MAX_PAGE_SIZE`] or an empty
    /// `task_name` is [`DalError::InvalidInput`]; an `after` naming no task
    /// execution is [`DalError::NotFound`].
    fn list_tasks(&self, filter: TaskFilter) -> impl DalFuture<Vec<TaskExecution>>;

    /// The audit events of task `task_id`, in the order they were written.
    fn get_events_for_task(&self, task_id: Uuid) -> impl DalFuture<Vec<ExecutionEvent>>;

    /// The audit events of pipeline execution `pipeline_id` and its tasks,
    /// in the order they were written.
    fn get_events_for_pipeline(&self, pipeline_id: Uuid) -> impl DalFuture<Vec<ExecutionEvent>>;

    /// One page of the pipeline executions `filter` selects, ordered by
    /// `(created_at, id)`, with keyset pagination (see [`PipelineFilter`]).
    /// A negative limit, a limit above [`MAX_PIPELINE_PAGE_SIZE`] or an empty
    /// `pipeline_name` is [`DalError::InvalidInput`]; an `after` naming no
    /// pipeline execution is [`DalError::NotFound`].
    fn list_pipelines(&self, filter: PipelineFilter) -> impl DalFuture<Vec<PipelineExecution>>;

    /// Every pipeline execution that is not terminal (`Pending` or
    /// `Running`, paused or not), ordered like `list_pipelines`.
    fn get_active_pipelines(&self) -> impl DalFuture<Vec<PipelineExecution>>;
}

impl TaskQueries for TaskExecutionDal {
    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn get_pending_tasks(&self, pipeline_id: Uuid) -> Result<Vec<TaskExecution>, DalError> {
        self.run(move |conn| queries::pending_tasks(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self, pipeline_ids), fields(pipelines = pipeline_ids.len()))]
    async fn get_pending_tasks_batch(
        &self,
        pipeline_ids: Vec<Uuid>,
    ) -> Result<Vec<TaskExecution>, DalError> {
        if pipeline_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |conn| queries::pending_tasks_batch(conn, pipeline_ids))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn check_pipeline_completion(&self, pipeline_id: Uuid) -> Result<bool, DalError> {
        self.run(move |conn| queries::pipeline_completion(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn check_pipeline_failure(&self, pipeline_id: Uuid) -> Result<bool, DalError> {
        self.run(move |conn| queries::pipeline_failure(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn get_task_status(
        &self,
        pipeline_id: Uuid,
        task_name: &str,
    ) -> Result<TaskStatus, DalError> {
        validate::name("task_name", task_name)?;
        let task_name = task_name.to_owned();
        self.run(move |conn| queries::task_status(conn, pipeline_id, &task_name))
            .await
    }

    #[tracing::instrument(skip(self, task_names), fields(%pipeline_id, names = task_names.len()))]
    async fn get_task_statuses_batch(
        &self,
        pipeline_id: Uuid,
        task_names: Vec<String>,
    ) -> Result<HashMap<String, TaskStatus>, DalError> {
        for name in &task_names {
            validate::name("task_names", name)?;
        }
        if task_names.is_empty() {
            return Ok(HashMap::new());
        }
        self.run(move |conn| queries::task_statuses_batch(conn, pipeline_id, task_names))
            .await
    }

    #[tracing::instrument(skip(self, pipeline_ids), fields(pipelines = pipeline_ids.len()))]
    async fn get_all_task_statuses_for_pipelines(
        &self,
        pipeline_ids: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, HashMap<String, TaskStatus>>, DalError> {
        if pipeline_ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.run(move |conn| queries::all_task_statuses_for_pipelines(conn, pipeline_ids))
            .await
    }

    #[tracing::instrument(skip(self))]
    async fn count_running_tasks(&self) -> Result<i64, DalError> {
        self.run(queries::count_running_tasks).await
    }

    #[tracing::instrument(skip(self), fields(pipeline_id = ?pipeline_id))]
    async fn count_tasks_by_status(
        &self,
        pipeline_id: Option<Uuid>,
    ) -> Result<HashMap<TaskStatus, i64>, DalError> {
        self.run(move |conn| queries::count_tasks_by_status(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self))]
    async fn get_orphaned_tasks(&self) -> Result<Vec<TaskExecution>, DalError> {
        self.run(queries::orphaned_tasks).await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn get_retry_stats(&self, pipeline_id: Uuid) -> Result<RetryStats, DalError> {
        self.run(move |conn| queries::retry_stats(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn get_exhausted_retry_tasks(
        &self,
        pipeline_id: Uuid,
    ) -> Result<Vec<TaskExecution>, DalError> {
        self.run(move |conn| queries::exhausted_retry_tasks(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self, filter), fields(pipeline_id = ?filter.pipeline_execution_id, after = ?filter.after))]
    async fn list_tasks(&self, filter: TaskFilter) -> Result<Vec<TaskExecution>, DalError> {
        filter.validate()?;
        self.run(move |conn| queries::list_tasks(conn, &filter))
            .await
    }

    #[tracing::instrument(skip(self), fields(%task_id))]
    async fn get_events_for_task(&self, task_id: Uuid) -> Result<Vec<ExecutionEvent>, DalError> {
        self.run(move |conn| queries::events_for_task(conn, task_id))
            .await
    }

    #[tracing::instrument(skip(self), fields(%pipeline_id))]
    async fn get_events_for_pipeline(
        &self,
        pipeline_id: Uuid,
    ) -> Result<Vec<ExecutionEvent>, DalError> {
        self.run(move |conn| queries::events_for_pipeline(conn, pipeline_id))
            .await
    }

    #[tracing::instrument(skip(self, filter), fields(after = ?filter.after))]
    async fn list_pipelines(
        &self,
        filter: PipelineFilter,
    ) -> Result<Vec<PipelineExecution>, DalError> {
        filter.validate()?;
        self.run(move |conn| queries::list_pipelines(conn, &filter))
            .await
    }

    #[tracing::instrument(skip(self))]
    async fn get_active_pipelines(&self) -> Result<Vec<PipelineExecution>, DalError> {
        self.run(queries::active_pipelines).await
    }
}
