//! `engine`: the demo's DAG workload run as an engine would, one task per
//! claim, its context loaded and saved, its dependents released.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_execution_dal::prelude::*;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use super::common::{Claims, Run, join_all, spawn_workers};
use crate::base::error::CliError;
use crate::base::workload::{PipelinePlan, Workload as DemoWorkload};
use crate::bench::report::Figures;

/// The longest an idle `engine` worker waits in `wait_for_ready`.
const ENGINE_IDLE_WAIT: Duration = Duration::from_millis(20);

/// The engine's view of one pipeline: its plan, its tasks' ids by name,
/// and how many dependencies each waiting task still waits for.
struct EnginePipeline {
    plan: PipelinePlan,
    ids: HashMap<String, Uuid>,
    waiting: Mutex<HashMap<String, usize>>,
}

/// `engine`: the demo's DAG workload without failures. Each of
/// `engine_workers` workers loops: claim one task, load its
/// dependencies' context, work 1 ms, then in one call
/// (`complete_and_promote`) complete it with its output context and mark
/// ready each dependent whose dependencies are all complete. An
/// idle worker waits in `wait_for_ready` (at most [`ENGINE_IDLE_WAIT`]).
pub(crate) async fn engine(run: &Run<'_>) -> Result<Figures, CliError> {
    const WORK: Duration = Duration::from_millis(1);
    let dal = run.dal;
    let demo = DemoWorkload::generate(42, run.sizes.engine_pipelines as u32, 0.0, false);
    let total = demo.task_count();
    run.bar.set_length(total as u64);

    let mut by_pipeline = HashMap::new();
    let mut roots = Vec::new();
    for plan in demo.pipelines {
        let pipeline = dal
            .create_pipeline_execution(
                NewPipelineExecution::new("bench-engine")
                    .context(json!({ "pipeline": { "index": plan.index } })),
            )
            .await?;
        let created = dal.create_many(plan.new_tasks(pipeline.id, 1)).await?;
        let ids: HashMap<String, Uuid> = created.into_iter().map(|t| (t.task_name, t.id)).collect();
        let waiting = plan
            .tasks
            .iter()
            .filter(|t| !t.depends_on.is_empty())
            .map(|t| (t.name.clone(), t.depends_on.len()))
            .collect();
        roots.extend(
            plan.tasks
                .iter()
                .filter(|t| t.depends_on.is_empty())
                .map(|t| ids[&t.name]),
        );
        by_pipeline.insert(
            pipeline.id,
            EnginePipeline {
                plan,
                ids,
                waiting: Mutex::new(waiting),
            },
        );
    }
    let by_pipeline = Arc::new(by_pipeline);
    let done = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(Notify::new());

    run.settle().await?;
    let start = Instant::now();
    for root in roots {
        dal.mark_ready(root).await?;
    }
    let workers = spawn_workers(run.sizes.engine_workers, || {
        let (dal, by_pipeline, done, wake, bar) = (
            dal.clone(),
            by_pipeline.clone(),
            done.clone(),
            wake.clone(),
            run.bar.clone(),
        );
        async move {
            let mut claims = Claims::default();
            while done.load(Ordering::Acquire) < total {
                let t = Instant::now();
                let Some(task) = dal.claim_ready_task(1).await?.pop() else {
                    // Idle: wait for a task to become ready (or the end).
                    tokio::select! {
                        woken = dal.wait_for_ready(ENGINE_IDLE_WAIT) => { woken?; }
                        () = wake.notified() => {}
                    }
                    continue;
                };
                claims.latencies.push(t.elapsed());
                claims.ids.push(task.id);
                let pipeline = by_pipeline
                    .get(&task.pipeline_execution_id)
                    .ok_or_else(|| {
                        CliError::Bench(format!(
                            "claimed a task of an unknown pipeline: {}",
                            task.id
                        ))
                    })?;
                let plan = pipeline.plan.task(&task.task_name).ok_or_else(|| {
                    CliError::Bench(format!("claimed an unknown task: {}", task.task_name))
                })?;
                let mut context = dal
                    .load_dependency_context(task.pipeline_execution_id, &plan.depends_on)
                    .await?;
                work(WORK).await?;
                if let Value::Object(map) = &mut context {
                    map.insert(task.task_name.clone(), json!({ "rows": claims.ids.len() }));
                }
                let mut ready = Vec::new();
                {
                    let mut waiting = pipeline.waiting.lock().await;
                    for dependent in pipeline
                        .plan
                        .tasks
                        .iter()
                        .filter(|t| t.depends_on.contains(&task.task_name))
                    {
                        if let Some(n) = waiting.get_mut(&dependent.name) {
                            *n -= 1;
                            if *n == 0 {
                                ready.push(pipeline.ids[&dependent.name]);
                            }
                        }
                    }
                }
                // The completion, its output and the dependents it releases:
                // one transaction.
                dal.complete_and_promote(task.id, None, &context, ready)
                    .await?;
                if done.fetch_add(1, Ordering::AcqRel) + 1 == total {
                    wake.notify_waiters();
                }
                bar.inc(1);
            }
            Ok(claims)
        }
    });
    let mut claims = Claims::merge(join_all(workers).await?);
    let elapsed = start.elapsed();
    let mut figures = Figures::default();
    figures
        .rate("engine_tasks_per_sec", total, elapsed)
        .latency(
            "engine_claim_p50_ms",
            "engine_claim_p99_ms",
            &mut claims.latencies,
        )
        .add("duplicates", claims.duplicates() as f64);
    Ok(figures)
}

/// Waits `duration`, as a task's work would, to within a few tens of
/// microseconds: on a thread of the blocking pool. (tokio's timer rounds a
/// wait up to its next millisecond tick, which makes a 1 ms sleep last
/// about 2 ms.)
async fn work(duration: Duration) -> Result<(), CliError> {
    tokio::task::spawn_blocking(move || std::thread::sleep(duration))
        .await
        .map_err(|e| CliError::Bench(format!("the simulated work did not finish: {e}")))
}
