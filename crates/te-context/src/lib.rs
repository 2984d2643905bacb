//! Contexts, task execution metadata, loading task contexts and merging
//! dependency contexts for the task-execution DAL, as the [`TaskContexts`]
//! trait on [`TaskExecutionDal`] and the [`merge_context_values`] function.
//!
//! A context is a JSON object stored in the contexts table: a pipeline
//! execution's initial context, or the output context a task saved. A task's
//! input context is its pipeline's initial context when it has no
//! dependencies, else its dependencies' output contexts merged in order.

mod complete;
mod merge;
#[doc(hidden)]
pub mod queries;
mod sql;

use std::collections::HashMap;

use serde_json::Value;
use te_core::toolkit::{distinct, validate};
use te_core::{
    AnyConnection, Backend, DalError, DalFuture, TaskExecutionDal, TaskExecutionMetadata,
};
use uuid::Uuid;

pub use merge::merge_context_values;

mod sealed {
    /// Keeps [`super::TaskContexts`] implemented by `TaskExecutionDal` only, so
    /// that adding a method is not a breaking change.
    pub trait Sealed {}
    impl Sealed for te_core::TaskExecutionDal {}
}

/// Contexts, task execution metadata, loading task contexts and merging
/// dependency contexts, as methods on [`TaskExecutionDal`].
///
/// Input is checked before anything is written: a context that is not a JSON
/// object, or an empty task name, is [`DalError::InvalidInput`]. A stored
/// context that cannot be decoded is [`DalError::InvalidData`].
pub trait TaskContexts: sealed::Sealed {
    /// Stores `value` as a new context and returns its id; an empty object
    /// stores nothing and returns `None`.
    fn create_context(&self, value: &Value) -> impl DalFuture<Option<Uuid>>;

    /// The document of context `context_id`; [`DalError::NotFound`] when absent.
    fn read_context(&self, context_id: Uuid) -> impl DalFuture<Value>;

    /// Replaces the document of context `context_id` (an empty object is
    /// allowed); [`DalError::NotFound`] when absent.
    fn update_context(&self, context_id: Uuid, value: &Value) -> impl DalFuture<()>;

    /// Deletes context `context_id`; pipeline executions and task metadata
    /// that linked it then link none. [`DalError::NotFound`] when absent.
    fn delete_context(&self, context_id: Uuid) -> impl DalFuture<()>;

    /// Stores `value` (a JSON object, possibly empty) as the output context
    /// of task `task_id`, upserts the task's metadata row and writes a
    /// `ContextSaved` event, in one transaction; returns the context's id.
    ///
    /// A later save replaces the earlier one in place (same context id, no
    /// orphaned context, still one metadata row per task execution).
    /// [`DalError::NotFound`] for an unknown task.
    fn save_task_context(&self, task_id: Uuid, value: &Value) -> impl DalFuture<Uuid>;

    /// Completes task `task_id` and stores `context` as its output, in one
    /// transaction: the `Running` → `Completed` transition of
    /// `mark_completed` (guarded by `runner_id` when given), then the
    /// context, its metadata row and the `ContextSaved` event of
    /// [`TaskContexts::save_task_context`]. A completed task therefore always
    /// has its output. `Ok(false)` when the runner does not hold the claim:
    /// nothing is written, context included. A task that is not `Running` is
    /// [`DalError::IllegalTransition`], an unknown one [`DalError::NotFound`],
    /// a context that is not a JSON object [`DalError::InvalidInput`]; none
    /// writes anything.
    fn complete_with_context(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
        context: &Value,
    ) -> impl DalFuture<bool>;

    /// [`TaskContexts::complete_with_context`] and the promotion of the
    /// task's dependents in ONE transaction: task `task_id` is completed
    /// with `context` as its output, then each of `dependents` that is
    /// `NotStarted` or `Ready` becomes `Ready` with a `TaskReady` event, as
    /// `mark_ready_many` makes them. An engine that has worked out which
    /// dependents the completion releases never leaves them waiting because
    /// it stopped between two calls, and pays one commit instead of two.
    ///
    /// `Ok(Some(n))`: the task completed and `n` dependents were made
    /// `Ready`; the others (running, finished, unknown, listed twice, the
    /// task itself, tasks of another pipeline execution, or any task when
    /// the task's pipeline execution was cancelled) are left alone, without
    /// an error: a promotion stays inside the completed task's pipeline, and
    /// a cancelled pipeline gets no `Ready` task. `Ok(None)` when the runner does not
    /// hold the claim: nothing is written and no dependent is promoted. The
    /// errors are those of `complete_with_context`, and none writes
    /// anything.
    fn complete_and_promote(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
        context: &Value,
        dependents: Vec<Uuid>,
    ) -> impl DalFuture<Option<usize>>;

    /// The output context task `task_id` saved, `None` when it saved none;
    /// [`DalError::NotFound`] for an unknown task.
    fn load_task_context(&self, task_id: Uuid) -> impl DalFuture<Option<Value>>;

    /// The saved output context of each of `task_names` of `pipeline_id`
    /// that has one (other names are absent), in one joined query; an empty
    /// input returns an empty map without a query.
    fn load_task_contexts_batch(
        &self,
        pipeline_id: Uuid,
        task_names: Vec<String>,
    ) -> impl DalFuture<HashMap<String, Value>>;

    /// The metadata row of each of `dependency_task_names` of `pipeline_id`
    /// that has one, with its context (`None` when it links none), in the
    /// order the names are given, in one `LEFT JOIN` query.
    fn get_dependency_metadata_with_contexts(
        &self,
        pipeline_id: Uuid,
        dependency_task_names: &[String],
    ) -> impl DalFuture<Vec<(TaskExecutionMetadata, Option<Value>)>>;

    /// The input context of a task of `pipeline_id` depending on
    /// `dependency_task_names`: with no dependencies, the pipeline's initial
    /// context (`{}` when it has none); else the dependencies' saved
    /// contexts merged with [`merge_context_values`] in the order the names
    /// are given (later names win on conflicting scalars; dependencies
    /// without a saved context add nothing). [`DalError::NotFound`] for an
    /// unknown pipeline execution.
    fn load_dependency_context(
        &self,
        pipeline_id: Uuid,
        dependency_task_names: &[String],
    ) -> impl DalFuture<Value>;
}

/// Checks that every name is usable as a task name.
fn check_names(names: &[String]) -> Result<(), DalError> {
    names
        .iter()
        .try_for_each(|name| validate::name("task_names", name))
}

/// Reads `query` of the tasks of `pipeline_id` named `names`, after
/// checking the names; no names is an empty answer, without a query.
async fn read_by_names<T: Default + Send + 'static>(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    names: &[String],
    query: fn(&mut AnyConnection, Uuid, &[String]) -> Result<T, DalError>,
) -> Result<T, DalError> {
    check_names(names)?;
    if names.is_empty() {
        return Ok(T::default());
    }
    let names = names.to_vec();
    dal.run(move |conn| query(conn, pipeline_id, &names)).await
}

impl TaskContexts for TaskExecutionDal {
    #[tracing::instrument(skip(self, value))]
    async fn create_context(&self, value: &Value) -> Result<Option<Uuid>, DalError> {
        validate::json_object("context", value)?;
        if value.as_object().is_some_and(|object| object.is_empty()) {
            return Ok(None);
        }
        let value = value.clone();
        self.write(move |conn| queries::create_context(conn, &value))
            .await
    }

    #[tracing::instrument(skip(self), fields(%context_id))]
    async fn read_context(&self, context_id: Uuid) -> Result<Value, DalError> {
        self.run(move |conn| queries::read_context(conn, context_id))
            .await
    }

    #[tracing::instrument(skip(self, value), fields(%context_id))]
    async fn update_context(&self, context_id: Uuid, value: &Value) -> Result<(), DalError> {
        validate::json_object("context", value)?;
        let value = value.clone();
        self.write(move |conn| queries::update_context(conn, context_id, &value))
            .await
    }

    #[tracing::instrument(skip(self), fields(%context_id))]
    async fn delete_context(&self, context_id: Uuid) -> Result<(), DalError> {
        self.write(move |conn| queries::delete_context(conn, context_id))
            .await
    }

    #[tracing::instrument(skip(self, value), fields(%task_id))]
    async fn save_task_context(&self, task_id: Uuid, value: &Value) -> Result<Uuid, DalError> {
        validate::json_object("context", value)?;
        let value = value.clone();
        self.write(move |conn| queries::save_task_context(conn, task_id, &value))
            .await
    }

    #[tracing::instrument(skip(self, context), fields(%task_id, runner_id = ?runner_id))]
    async fn complete_with_context(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
        context: &Value,
    ) -> Result<bool, DalError> {
        // With no dependents to promote, `complete_and_promote` is exactly this.
        self.complete_and_promote(task_id, runner_id, context, Vec::new())
            .await
            .map(|completed| completed.is_some())
    }

    #[tracing::instrument(skip(self, context, dependents), fields(%task_id, runner_id = ?runner_id, dependents = dependents.len()))]
    async fn complete_and_promote(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
        context: &Value,
        dependents: Vec<Uuid>,
    ) -> Result<Option<usize>, DalError> {
        validate::json_object("context", context)?;
        let context = context.clone();
        let dependents = distinct(dependents);
        if self.backend() == Backend::Postgres {
            return complete::coalesced(self, task_id, runner_id, context, dependents).await;
        }
        self.write(move |conn| {
            complete::complete_and_promote(conn, task_id, runner_id, &context, &dependents)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(%task_id))]
    async fn load_task_context(&self, task_id: Uuid) -> Result<Option<Value>, DalError> {
        self.run(move |conn| queries::load_task_context(conn, task_id))
            .await
    }

    #[tracing::instrument(skip(self, task_names), fields(%pipeline_id, names = task_names.len()))]
    async fn load_task_contexts_batch(
        &self,
        pipeline_id: Uuid,
        task_names: Vec<String>,
    ) -> Result<HashMap<String, Value>, DalError> {
        read_by_names(self, pipeline_id, &task_names, queries::task_contexts_batch).await
    }

    #[tracing::instrument(skip(self, dependency_task_names), fields(%pipeline_id, names = dependency_task_names.len()))]
    async fn get_dependency_metadata_with_contexts(
        &self,
        pipeline_id: Uuid,
        dependency_task_names: &[String],
    ) -> Result<Vec<(TaskExecutionMetadata, Option<Value>)>, DalError> {
        let query = queries::dependency_metadata_with_contexts;
        read_by_names(self, pipeline_id, dependency_task_names, query).await
    }

    #[tracing::instrument(skip(self, dependency_task_names), fields(%pipeline_id, names = dependency_task_names.len()))]
    async fn load_dependency_context(
        &self,
        pipeline_id: Uuid,
        dependency_task_names: &[String],
    ) -> Result<Value, DalError> {
        check_names(dependency_task_names)?;
        let names = dependency_task_names.to_vec();
        self.run(move |conn| queries::dependency_context(conn, pipeline_id, &names))
            .await
    }
}
