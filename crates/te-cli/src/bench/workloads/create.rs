//! `create`: tasks created one by one, then in `create_many` batches.

use std::time::Instant;

use task_execution_dal::prelude::*;

use super::common::{Run, pipelines, share_out};
use crate::base::error::CliError;
use crate::bench::report::Figures;

/// `create`: P × T tasks created one by one by W concurrent clients, then
/// P × T more in `create_many` calls of `batch` by W clients.
pub(crate) async fn create(run: &Run<'_>) -> Result<Figures, CliError> {
    let (tasks, batch) = (run.sizes.tasks, run.sizes.batch);
    let total = run.sizes.pipelines * tasks;
    run.bar.set_length(2 * total as u64);
    let mut figures = Figures::default();

    let ids = pipelines(run.dal, "create-one", run.sizes.pipelines).await?;
    let start = Instant::now();
    share_out(run, total, move |dal, i| {
        let new = NewTaskExecution::new(ids[i / tasks], format!("task-{}", i % tasks))
            .status(TaskStatus::Ready);
        async move { dal.create(new).await.map(|_| 1) }
    })
    .await?;
    figures.rate("create_one_tasks_per_sec", total, start.elapsed());

    let ids = pipelines(run.dal, "create-many", run.sizes.pipelines).await?;
    let chunks_per_pipeline = tasks.div_ceil(batch);
    let start = Instant::now();
    share_out(run, ids.len() * chunks_per_pipeline, move |dal, c| {
        let pipeline = ids[c / chunks_per_pipeline];
        let from = (c % chunks_per_pipeline) * batch;
        let to = (from + batch).min(tasks);
        let new: Vec<_> = (from..to)
            .map(|t| NewTaskExecution::new(pipeline, format!("task-{t}")).status(TaskStatus::Ready))
            .collect();
        async move { dal.create_many(new).await.map(|created| created.len()) }
    })
    .await?;
    figures.rate("create_batched_tasks_per_sec", total, start.elapsed());
    Ok(figures)
}
