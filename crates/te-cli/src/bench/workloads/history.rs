//! `history` and `prune`: the per-task drain with many finished tasks
//! present, and beside a prune deleting them.

use std::time::Instant;

use task_execution_dal::prelude::*;

use super::common::{Run, fill, history_rows, pipelines};
use super::drain::{drain_all, drain_new};
use crate::base::error::CliError;
use crate::bench::report::Figures;

/// `history`: the per-task drain of `history_tasks` tasks on an empty
/// database, then again with `history_rows` completed tasks present.
pub(crate) async fn history(run: &Run<'_>) -> Result<Figures, CliError> {
    let tasks = run.sizes.history_tasks;
    run.bar.set_length(2 * tasks as u64);
    let mut empty = drain_new(run, "history-empty", 1, tasks, 1).await?;
    history_rows(run.dal, "history-old", run.sizes.history_rows, 10_000).await?;
    let mut full = drain_new(run, "history-full", 1, tasks, 1).await?;

    let mut figures = Figures::default();
    let mut a = Figures::default();
    a.latency(
        "claim_p50_empty_ms",
        "claim_p99_empty_ms",
        &mut empty.claims.latencies,
    );
    let mut b = Figures::default();
    b.latency(
        "claim_p50_history_ms",
        "claim_p99_history_ms",
        &mut full.claims.latencies,
    );
    let ratio = b.get("claim_p50_history_ms").unwrap_or(0.0)
        / a.get("claim_p50_empty_ms").unwrap_or(0.0).max(1e-9);
    figures
        .rate("drain_empty_tasks_per_sec", tasks, empty.elapsed)
        .rate("drain_history_tasks_per_sec", tasks, full.elapsed)
        .extend(a)
        .extend(b)
        .add("claim_p50_ratio", ratio)
        .add(
            "duplicates",
            (empty.claims.duplicates() + full.claims.duplicates()) as f64,
        );
    Ok(figures)
}

/// `prune`: the per-task drain of `history_tasks` tasks alone, then again
/// while `prune_pipelines` deletes `history_rows` finished tasks (finished
/// pipelines of 1,000 tasks each, 10 pipelines per transaction): how much a
/// prune slows the claims that go on beside it.
pub(crate) async fn prune(run: &Run<'_>) -> Result<Figures, CliError> {
    let (dal, tasks, rows) = (run.dal, run.sizes.history_tasks, run.sizes.history_rows);
    run.bar.set_length(2 * tasks as u64);
    let mut alone = drain_new(run, "prune-alone", 1, tasks, 1).await?;

    for pipeline in history_rows(dal, "prune-old", rows, 1_000).await? {
        dal.update_pipeline_status(pipeline, PipelineStatus::Completed, None)
            .await?;
    }
    let ids = pipelines(dal, "prune-during", 1).await?;
    fill(dal, &ids, tasks, TaskStatus::Ready).await?;
    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    let pruner = {
        let dal = dal.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let outcome = dal.prune_pipelines(cutoff, 10).await;
            (outcome, start.elapsed())
        })
    };
    let mut during = drain_all(run, 1, tasks).await?;
    let (outcome, took) = pruner
        .await
        .map_err(|e| CliError::Bench(format!("the prune stopped: {e}")))?;
    let outcome = outcome?;
    if outcome.tasks != rows {
        return Err(CliError::Bench(format!(
            "pruned {} of {rows} finished tasks",
            outcome.tasks
        )));
    }
    let mut figures = Figures::default();
    figures
        .latency(
            "claim_p50_alone_ms",
            "claim_p99_alone_ms",
            &mut alone.claims.latencies,
        )
        .latency(
            "claim_p50_during_prune_ms",
            "claim_p99_during_prune_ms",
            &mut during.claims.latencies,
        )
        .rate("drain_during_prune_tasks_per_sec", tasks, during.elapsed)
        .add("pruned_tasks", outcome.tasks as f64)
        .add("prune_secs", took.as_secs_f64())
        .add(
            "duplicates",
            (alone.claims.duplicates() + during.claims.duplicates()) as f64,
        );
    Ok(figures)
}
