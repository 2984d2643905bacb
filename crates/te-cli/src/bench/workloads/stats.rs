//! `stats`: the statistics queries on one large pipeline.

use std::time::Instant;

use task_execution_dal::prelude::*;

use super::common::{Run, fill, pipelines};
use crate::base::error::CliError;
use crate::bench::report::{Figures, median_ms};

/// Calls of each statistics query; the median is reported.
const STATS_CALLS: usize = 7;

/// `stats`: `get_retry_stats` and `get_task_statuses_batch` (every name) on
/// one pipeline of `stats_tasks` tasks; the median of several calls each.
pub(crate) async fn stats(run: &Run<'_>) -> Result<Figures, CliError> {
    let (dal, tasks) = (run.dal, run.sizes.stats_tasks);
    run.bar.set_length(2 * STATS_CALLS as u64);
    let ids = pipelines(dal, "stats", 1).await?;
    fill(dal, &ids, tasks, TaskStatus::Ready).await?;
    run.settle().await?;
    let names: Vec<String> = (0..tasks).map(|t| format!("task-{t}")).collect();
    let (mut retry, mut statuses) = (Vec::new(), Vec::new());
    for _ in 0..STATS_CALLS {
        let t = Instant::now();
        dal.get_retry_stats(ids[0]).await?;
        retry.push(t.elapsed());
        run.bar.inc(1);
        let t = Instant::now();
        let map = dal.get_task_statuses_batch(ids[0], names.clone()).await?;
        statuses.push(t.elapsed());
        run.bar.inc(1);
        if map.len() != tasks {
            return Err(CliError::Bench(format!(
                "get_task_statuses_batch returned {} of {tasks} names",
                map.len(),
            )));
        }
    }
    let mut figures = Figures::default();
    figures
        .add("retry_stats_ms", median_ms(retry))
        .add("task_statuses_batch_ms", median_ms(statuses));
    Ok(figures)
}
