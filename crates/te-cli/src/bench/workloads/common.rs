//! What every workload of `te bench` is built from: the [`Run`] it works
//! in, workers that share out items, the untimed set-up of pipelines and
//! tasks, and the claims workers record.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::ProgressBar;
use task_execution_dal::prelude::*;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::base::error::CliError;
use crate::bench::args::Sizes;
use crate::bench::sql;

/// Tasks created per `create_many` call when a workload prepares its data.
const SETUP_CHUNK: usize = 1_000;

/// What every workload runs with: the database, the sizes from the command
/// line, and the progress bar to advance.
pub(crate) struct Run<'a> {
    /// The fresh, migrated database.
    pub(crate) dal: &'a TaskExecutionDal,
    /// The sizes of the workloads.
    pub(crate) sizes: &'a Sizes,
    /// The progress bar, advanced as the workload goes.
    pub(crate) bar: &'a ProgressBar,
}

impl Run<'_> {
    /// On PostgreSQL (unless `--no-analyze`), gathers planner statistics on
    /// the loaded tables, as autovacuum does within about a minute of a bulk
    /// load, so that the timed part runs the plans of a settled database
    /// (not timed). A table never analyzed looks nearly empty to the planner,
    /// which then sorts every ready task for each claim.
    ///
    /// Then opens as many pooled connections as there are workers (see
    /// [`Run::warm_pool`]).
    pub(crate) async fn settle(&self) -> Result<(), CliError> {
        self.warm_pool().await?;
        if self.sizes.no_analyze || self.dal.backend() != Backend::Postgres {
            return Ok(());
        }
        self.dal
            .run(|conn| sql::analyze_loaded_tables(conn).map_err(DalError::from))
            .await?;
        Ok(())
    }
}

impl Run<'_> {
    /// Has one pooled connection per worker open before anything is timed,
    /// as a pool serving long-running workers has: each of `workers` calls
    /// holds its connection for a moment, so that the pool opens one per
    /// call (up to its size). Otherwise connections the timed part needs
    /// beyond those a previous part used are opened inside its
    /// measurement (a PostgreSQL connection takes tens of milliseconds, and
    /// shows as the claims' p99).
    async fn warm_pool(&self) -> Result<(), CliError> {
        let mut holds = JoinSet::new();
        for _ in 0..self.sizes.workers {
            let dal = self.dal.clone();
            holds.spawn(async move {
                dal.run(|_conn| {
                    std::thread::sleep(Duration::from_millis(20));
                    Ok(())
                })
                .await
            });
        }
        while let Some(held) = holds.join_next().await {
            held.map_err(|e| CliError::Bench(format!("a pool warm-up call panicked: {e}")))??;
        }
        Ok(())
    }
}

/// Starts `workers` workers, each the future `worker` makes.
pub(crate) fn spawn_workers<T, F, Fut>(workers: usize, worker: F) -> JoinSet<Result<T, CliError>>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, CliError>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker());
    }
    set
}

/// Waits for every worker; the first error (or panic) fails the workload.
pub(crate) async fn join_all<T: 'static>(
    mut set: JoinSet<Result<T, CliError>>,
) -> Result<Vec<T>, CliError> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        out.push(joined.map_err(|e| CliError::Bench(format!("a worker stopped: {e}")))??);
    }
    Ok(out)
}

/// `run.sizes.workers` concurrent clients share out items `0..items`: each
/// takes the next item `i` and awaits `item(dal, i)`, which returns how many
/// tasks it wrote, until none is left.
pub(crate) async fn share_out<F, Fut>(run: &Run<'_>, items: usize, item: F) -> Result<(), CliError>
where
    F: Fn(TaskExecutionDal, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, DalError>> + Send,
{
    let (item, next) = (Arc::new(item), Arc::new(AtomicUsize::new(0)));
    join_all(spawn_workers(run.sizes.workers, || {
        let (dal, bar, item, next) = (run.dal.clone(), run.bar.clone(), item.clone(), next.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items {
                    return Ok(());
                }
                let written = item(dal.clone(), i).await?;
                bar.inc(written as u64);
            }
        }
    }))
    .await?;
    Ok(())
}

/// Creates `pipelines` pipeline executions named `{prefix}-{i}` (not timed).
pub(crate) async fn pipelines(
    dal: &TaskExecutionDal,
    prefix: &str,
    pipelines: usize,
) -> Result<Vec<Uuid>, CliError> {
    let mut ids = Vec::with_capacity(pipelines);
    for p in 0..pipelines {
        let pipeline = dal
            .create_pipeline_execution(NewPipelineExecution::new(format!("{prefix}-{p}")))
            .await?;
        ids.push(pipeline.id);
    }
    Ok(ids)
}

/// Creates `tasks` tasks with `status` in each of `pipeline_ids`, in calls
/// of [`SETUP_CHUNK`] (not timed).
pub(crate) async fn fill(
    dal: &TaskExecutionDal,
    pipeline_ids: &[Uuid],
    tasks: usize,
    status: TaskStatus,
) -> Result<(), CliError> {
    for pipeline in pipeline_ids {
        let mut next = 0;
        while next < tasks {
            let end = (next + SETUP_CHUNK).min(tasks);
            let batch = (next..end)
                .map(|t| NewTaskExecution::new(*pipeline, format!("task-{t}")).status(status))
                .collect();
            dal.create_many(batch).await?;
            next = end;
        }
    }
    Ok(())
}

/// Creates `rows` completed tasks in pipelines `{prefix}-{i}` of at most
/// `per_pipeline` tasks each; returns the pipelines (not timed).
pub(crate) async fn history_rows(
    dal: &TaskExecutionDal,
    prefix: &str,
    rows: usize,
    per_pipeline: usize,
) -> Result<Vec<Uuid>, CliError> {
    let ids = pipelines(dal, prefix, rows.div_ceil(per_pipeline)).await?;
    let mut left = rows;
    for pipeline in &ids {
        let n = left.min(per_pipeline);
        fill(dal, &[*pipeline], n, TaskStatus::Completed).await?;
        left -= n;
    }
    Ok(ids)
}

/// The tasks some workers claimed, and the latency they measured per
/// claimed task or claim call (what the workload reports as its percentiles).
#[derive(Default)]
pub(crate) struct Claims {
    pub(crate) ids: Vec<Uuid>,
    pub(crate) latencies: Vec<Duration>,
}

impl Claims {
    /// Every worker's claims together.
    pub(crate) fn merge(parts: impl IntoIterator<Item = Claims>) -> Claims {
        parts.into_iter().fold(Claims::default(), |mut all, part| {
            all.ids.extend(part.ids);
            all.latencies.extend(part.latencies);
            all
        })
    }

    /// How many distinct tasks were claimed.
    pub(crate) fn unique(&self) -> usize {
        self.ids.iter().collect::<HashSet<&Uuid>>().len()
    }

    /// A task id returned by more than one claim counts once per extra claim.
    pub(crate) fn duplicates(&self) -> usize {
        self.ids.len() - self.unique()
    }
}
