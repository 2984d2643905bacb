//! `drain`: ready tasks claimed and completed per task, then in batches;
//! the drain loop the other claim workloads time too.

use std::time::{Duration, Instant};

use task_execution_dal::prelude::*;

use super::common::{Claims, Run, fill, join_all, pipelines, spawn_workers};
use crate::base::error::CliError;
use crate::bench::report::Figures;

/// What a drain measured: throughput, claims and completion latencies.
pub(crate) struct Drained {
    pub(crate) elapsed: Duration,
    pub(crate) claims: Claims,
    pub(crate) complete: Vec<Duration>,
}

/// W workers claim `batch` at a time (`claim_ready_task`) and complete what
/// they claimed (`mark_completed` for one, `mark_completed_many` for more)
/// until a claim comes back empty. Latencies of empty claims are left out.
/// Fails unless `expected` distinct tasks were claimed.
pub(crate) async fn drain_all(
    run: &Run<'_>,
    batch: usize,
    expected: usize,
) -> Result<Drained, CliError> {
    run.settle().await?;
    let start = Instant::now();
    let parts = join_all(spawn_workers(run.sizes.workers, || {
        let (dal, bar) = (run.dal.clone(), run.bar.clone());
        async move {
            let (mut claims, mut complete) = (Claims::default(), Vec::new());
            loop {
                let t = Instant::now();
                let got = dal.claim_ready_task(batch).await?;
                if got.is_empty() {
                    return Ok((claims, complete));
                }
                claims.latencies.push(t.elapsed());
                let t = Instant::now();
                if batch == 1 {
                    dal.mark_completed(got[0].id, None).await?;
                } else {
                    dal.mark_completed_many(got.iter().map(|c| c.id).collect(), None)
                        .await?;
                }
                complete.push(t.elapsed());
                bar.inc(got.len() as u64);
                claims.ids.extend(got.into_iter().map(|c| c.id));
            }
        }
    }))
    .await?;
    let elapsed = start.elapsed();
    let (claims, complete): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let drained = Drained {
        elapsed,
        claims: Claims::merge(claims),
        complete: complete.concat(),
    };
    let claimed = drained.claims.unique();
    if claimed != expected {
        return Err(CliError::Bench(format!(
            "{claimed} of {expected} ready tasks were claimed"
        )));
    }
    Ok(drained)
}

/// Creates `pipelines` pipelines named `{prefix}-{i}` of `tasks` ready
/// tasks each (not timed), then drains them `batch` at a time.
pub(crate) async fn drain_new(
    run: &Run<'_>,
    prefix: &str,
    pipeline_count: usize,
    tasks: usize,
    batch: usize,
) -> Result<Drained, CliError> {
    let ids = pipelines(run.dal, prefix, pipeline_count).await?;
    fill(run.dal, &ids, tasks, TaskStatus::Ready).await?;
    drain_all(run, batch, pipeline_count * tasks).await
}

/// `drain`: P × T ready tasks drained per task (`claim_ready_task(1)` +
/// `mark_completed`), then P × T more drained in batches of `claim_batch`
/// (`mark_completed_many`).
pub(crate) async fn drain(run: &Run<'_>) -> Result<Figures, CliError> {
    let (pipelines, tasks) = (run.sizes.pipelines, run.sizes.tasks);
    let total = pipelines * tasks;
    run.bar.set_length(2 * total as u64);
    let mut one = drain_new(run, "drain-one", pipelines, tasks, 1).await?;
    let mut many = drain_new(run, "drain-many", pipelines, tasks, run.sizes.claim_batch).await?;
    let mut figures = Figures::default();
    figures
        .rate("drain_per_task_tasks_per_sec", total, one.elapsed)
        .latency("claim_p50_ms", "claim_p99_ms", &mut one.claims.latencies)
        .latency("complete_p50_ms", "complete_p99_ms", &mut one.complete)
        .rate("drain_batched_tasks_per_sec", total, many.elapsed)
        .latency(
            "claim_batch_p50_ms",
            "claim_batch_p99_ms",
            &mut many.claims.latencies,
        )
        .latency(
            "complete_many_p50_ms",
            "complete_many_p99_ms",
            &mut many.complete,
        )
        .add(
            "duplicates",
            (one.claims.duplicates() + many.claims.duplicates()) as f64,
        );
    Ok(figures)
}
