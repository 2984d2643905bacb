//! Helpers shared by the topic modules of the integration tests: fixtures,
//! audit-log and row-count readers, and assertions on `DalError`s.

use diesel::prelude::*;
use te_core::schema::{
    contexts, execution_events, pipeline_executions, task_execution_metadata, task_executions,
};
use te_core::toolkit::bind;
use uuid::Uuid;

use task_execution_dal::prelude::*;

/// Creates a pipeline execution named `etl` and returns it.
pub(crate) async fn pipeline(dal: &TaskExecutionDal) -> PipelineExecution {
    dal.create_pipeline_execution(NewPipelineExecution::new("etl"))
        .await
        .unwrap()
}

/// Creates `n` tasks of `pipeline_id` in `Ready`, named `task-00000`,
/// `task-00001`, ..., and returns them in that order.
pub(crate) async fn create_ready(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    n: usize,
) -> Vec<TaskExecution> {
    dal.create_many(
        (0..n)
            .map(|i| {
                NewTaskExecution::new(pipeline_id, format!("task-{i:05}")).status(TaskStatus::Ready)
            })
            .collect(),
    )
    .await
    .unwrap()
}

/// Claims ready tasks `batch` at a time, for `runner` when it is given and
/// with `claim_ready_task` otherwise, until a claim comes back empty; returns
/// the ids claimed. Asserts that no claim exceeds `batch`.
pub(crate) async fn claim_until_empty(
    dal: &TaskExecutionDal,
    runner: Option<Uuid>,
    batch: usize,
) -> Vec<Uuid> {
    let mut mine = Vec::new();
    loop {
        let claimed = match runner {
            Some(r) => dal.claim_ready_tasks_for_runner(r, batch).await,
            None => dal.claim_ready_task(batch).await,
        }
        .unwrap();
        assert!(claimed.len() <= batch);
        if claimed.is_empty() {
            return mine;
        }
        mine.extend(claimed.into_iter().map(|c| c.id));
    }
}

/// Audit events in log (sequence) order: all of them, or only those of `task`
/// when it is given, and only those of `event_type` when it is given.
pub(crate) async fn events(
    dal: &TaskExecutionDal,
    task: Option<Uuid>,
    event_type: Option<EventType>,
) -> Vec<ExecutionEvent> {
    dal.run(move |conn| {
        let mut query = execution_events::table
            .order(execution_events::sequence)
            .select(ExecutionEvent::as_select())
            .into_boxed();
        if let Some(task) = task {
            query = query.filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task))));
        }
        if let Some(event_type) = event_type {
            query = query.filter(execution_events::event_type.eq(event_type));
        }
        Ok(query.load(conn)?)
    })
    .await
    .unwrap()
}

/// How many audit events there are: all of them, or only those of `task` when
/// it is given.
pub(crate) async fn count_events(dal: &TaskExecutionDal, task: Option<Uuid>) -> i64 {
    dal.run(move |conn| {
        let mut query = execution_events::table.into_boxed();
        if let Some(task) = task {
            query = query.filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task))));
        }
        Ok(query.count().get_result(conn)?)
    })
    .await
    .unwrap()
}

/// The number of rows in each table of the schema.
///
/// Compare whole values to check that a refused operation wrote nothing; build
/// expected values with `RowCounts { tasks: 3, ..Default::default() }`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowCounts {
    /// Rows of `pipeline_executions`.
    pub(crate) pipelines: i64,
    /// Rows of `task_executions`.
    pub(crate) tasks: i64,
    /// Rows of `contexts`.
    pub(crate) contexts: i64,
    /// Rows of `task_execution_metadata`.
    pub(crate) metadata: i64,
    /// Rows of `execution_events`.
    pub(crate) events: i64,
}

/// Counts the rows of every table.
pub(crate) async fn row_counts(dal: &TaskExecutionDal) -> RowCounts {
    dal.run(|conn| {
        Ok(RowCounts {
            pipelines: pipeline_executions::table.count().get_result(conn)?,
            tasks: task_executions::table.count().get_result(conn)?,
            contexts: contexts::table.count().get_result(conn)?,
            metadata: task_execution_metadata::table.count().get_result(conn)?,
            events: execution_events::table.count().get_result(conn)?,
        })
    })
    .await
    .unwrap()
}

/// Asserts that `result` is `DalError::InvalidInput` naming `expected_field`.
pub(crate) fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    expected_field: &str,
) {
    match result {
        Err(DalError::InvalidInput { field, .. }) => assert_eq!(field, expected_field),
        other => panic!("expected InvalidInput for {expected_field}, got {other:?}"),
    }
}

/// Asserts that `result` is `DalError::NotFound` of `expected_entity`.
pub(crate) fn assert_not_found<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    expected_entity: &str,
) {
    match result {
        Err(DalError::NotFound { entity, .. }) => assert_eq!(entity, expected_entity),
        other => panic!("expected NotFound {expected_entity}, got {other:?}"),
    }
}

/// How many migrations the backend has: the folders of `migrations/<backend>`.
pub(crate) fn migration_count(backend: Backend) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend.as_str());
    std::fs::read_dir(dir)
        .expect("the migrations folder")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count()
}
