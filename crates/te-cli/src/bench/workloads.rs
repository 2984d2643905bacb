//! The workloads `te bench` measures, each on a fresh, migrated database:
//! creating tasks, draining them, the statistics queries, claiming over a
//! large history, the demo's engine loop, and waking idle workers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde_json::{Value, json};
use task_execution_dal::prelude::*;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::Sizes;
use super::report::{Figures, median_ms};
use crate::demo::workload::{PipelinePlan, Workload as DemoWorkload};
use crate::error::CliError;

/// Tasks created per `create_many` call when a workload prepares its data.
const SETUP_CHUNK: usize = 1_000;
/// Calls of each statistics query; the median is reported.
const STATS_CALLS: usize = 7;
/// The longest an idle `engine` worker waits in `wait_for_ready`.
const ENGINE_IDLE_WAIT: Duration = Duration::from_millis(20);
/// The longest an idle `wakeup` worker waits in `wait_for_ready` before it
/// claims again.
const WAKEUP_IDLE_WAIT: Duration = Duration::from_secs(1);
/// The pause, once every `wakeup` worker is waiting again, before the next
/// task is made ready.
const WAKEUP_SETTLE: Duration = Duration::from_millis(5);

/// Waits for every worker; the first error (or panic) fails the workload.
async fn join_all<T: 'static>(mut set: JoinSet<Result<T, CliError>>) -> Result<Vec<T>, CliError> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        out.push(joined.map_err(|e| CliError::Bench(format!("a worker stopped: {e}")))??);
    }
    Ok(out)
}

/// Creates `pipelines` pipeline executions named `{prefix}-{i}` (not timed).
async fn pipelines(
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
async fn fill(
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

/// `create`: P × T tasks created one by one by W concurrent clients, then
/// P × T more in `create_many` calls of `batch` by W clients.
pub(crate) async fn create(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    let total = sizes.pipelines * sizes.tasks;
    bar.set_length(2 * total as u64);
    let mut figures = Figures::default();

    let ids = Arc::new(pipelines(dal, "create-one", sizes.pipelines).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..sizes.workers {
        let (dal, ids, next, bar, tasks) = (
            dal.clone(),
            ids.clone(),
            next.clone(),
            bar.clone(),
            sizes.tasks,
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok(());
                }
                let new = NewTaskExecution::new(ids[i / tasks], format!("task-{}", i % tasks))
                    .status(TaskStatus::Ready);
                dal.create(new).await?;
                bar.inc(1);
            }
        });
    }
    join_all(set).await?;
    figures.rate("create_one_tasks_per_sec", total, start.elapsed());

    let ids = Arc::new(pipelines(dal, "create-many", sizes.pipelines).await?);
    let chunks_per_pipeline = sizes.tasks.div_ceil(sizes.batch);
    let chunks = sizes.pipelines * chunks_per_pipeline;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..sizes.workers {
        let (dal, ids, next, bar) = (dal.clone(), ids.clone(), next.clone(), bar.clone());
        let (tasks, batch) = (sizes.tasks, sizes.batch);
        set.spawn(async move {
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    return Ok(());
                }
                let pipeline = ids[c / chunks_per_pipeline];
                let from = (c % chunks_per_pipeline) * batch;
                let to = (from + batch).min(tasks);
                let new: Vec<_> = (from..to)
                    .map(|t| {
                        NewTaskExecution::new(pipeline, format!("task-{t}"))
                            .status(TaskStatus::Ready)
                    })
                    .collect();
                dal.create_many(new).await?;
                bar.inc((to - from) as u64);
            }
        });
    }
    join_all(set).await?;
    figures.rate("create_batched_tasks_per_sec", total, start.elapsed());
    Ok(figures)
}

/// What a drain measured: throughput, claim and completion latencies, and
/// the claimed ids.
struct Drained {
    elapsed: Duration,
    claimed: Vec<Uuid>,
    claim: Vec<Duration>,
    complete: Vec<Duration>,
}

impl Drained {
    /// A task id returned by more than one claim counts once per extra claim.
    fn duplicates(&self) -> usize {
        let unique: HashSet<&Uuid> = self.claimed.iter().collect();
        self.claimed.len() - unique.len()
    }
}

/// W workers claim `batch` at a time (`claim_ready_task`) and complete what
/// they claimed (`mark_completed` for one, `mark_completed_many` for more)
/// until a claim comes back empty. Latencies of empty claims are left out.
async fn drain_loop(
    dal: &TaskExecutionDal,
    workers: usize,
    batch: usize,
    bar: &ProgressBar,
) -> Result<Drained, CliError> {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (dal, bar) = (dal.clone(), bar.clone());
        set.spawn(async move {
            let (mut claimed, mut claim, mut complete) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                let t = Instant::now();
                let got = dal.claim_ready_task(batch).await?;
                if got.is_empty() {
                    return Ok((claimed, claim, complete));
                }
                claim.push(t.elapsed());
                let t = Instant::now();
                if batch == 1 {
                    dal.mark_completed(got[0].id, None).await?;
                } else {
                    dal.mark_completed_many(got.iter().map(|c| c.id).collect(), None)
                        .await?;
                }
                complete.push(t.elapsed());
                bar.inc(got.len() as u64);
                claimed.extend(got.into_iter().map(|c| c.id));
            }
        });
    }
    let mut drained = Drained {
        elapsed: Duration::ZERO,
        claimed: Vec::new(),
        claim: Vec::new(),
        complete: Vec::new(),
    };
    for (claimed, claim, complete) in join_all(set).await? {
        drained.claimed.extend(claimed);
        drained.claim.extend(claim);
        drained.complete.extend(complete);
    }
    drained.elapsed = start.elapsed();
    Ok(drained)
}

/// Checks that a drain claimed every one of `expected` tasks.
fn check_all_claimed(drained: &Drained, expected: usize) -> Result<(), CliError> {
    let unique: HashSet<&Uuid> = drained.claimed.iter().collect();
    if unique.len() == expected {
        Ok(())
    } else {
        Err(CliError::Bench(format!(
            "{} of {expected} ready tasks were claimed",
            unique.len()
        )))
    }
}

/// `drain`: P × T ready tasks drained per task (`claim_ready_task(1)` +
/// `mark_completed`), then P × T more drained in batches of `claim_batch`
/// (`mark_completed_many`).
pub(crate) async fn drain(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    let total = sizes.pipelines * sizes.tasks;
    bar.set_length(2 * total as u64);
    let mut figures = Figures::default();

    let ids = pipelines(dal, "drain-one", sizes.pipelines).await?;
    fill(dal, &ids, sizes.tasks, TaskStatus::Ready).await?;
    let mut one = drain_loop(dal, sizes.workers, 1, bar).await?;
    check_all_claimed(&one, total)?;
    figures
        .rate("drain_per_task_tasks_per_sec", total, one.elapsed)
        .latency("claim_p50_ms", "claim_p99_ms", &mut one.claim)
        .latency("complete_p50_ms", "complete_p99_ms", &mut one.complete);

    let ids = pipelines(dal, "drain-many", sizes.pipelines).await?;
    fill(dal, &ids, sizes.tasks, TaskStatus::Ready).await?;
    let mut many = drain_loop(dal, sizes.workers, sizes.claim_batch, bar).await?;
    check_all_claimed(&many, total)?;
    figures
        .rate("drain_batched_tasks_per_sec", total, many.elapsed)
        .latency("claim_batch_p50_ms", "claim_batch_p99_ms", &mut many.claim)
        .latency(
            "complete_many_p50_ms",
            "complete_many_p99_ms",
            &mut many.complete,
        )
        .add("duplicates", (one.duplicates() + many.duplicates()) as f64);
    Ok(figures)
}

/// `stats`: `get_retry_stats` and `get_task_statuses_batch` (every name) on
/// one pipeline of `stats_tasks` tasks; the median of several calls each.
pub(crate) async fn stats(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    bar.set_length(2 * STATS_CALLS as u64);
    let ids = pipelines(dal, "stats", 1).await?;
    fill(dal, &ids, sizes.stats_tasks, TaskStatus::Ready).await?;
    let names: Vec<String> = (0..sizes.stats_tasks)
        .map(|t| format!("task-{t}"))
        .collect();
    let (mut retry, mut statuses) = (Vec::new(), Vec::new());
    for _ in 0..STATS_CALLS {
        let t = Instant::now();
        dal.get_retry_stats(ids[0]).await?;
        retry.push(t.elapsed());
        bar.inc(1);
        let t = Instant::now();
        let map = dal.get_task_statuses_batch(ids[0], names.clone()).await?;
        statuses.push(t.elapsed());
        bar.inc(1);
        if map.len() != sizes.stats_tasks {
            return Err(CliError::Bench(format!(
                "get_task_statuses_batch returned {} of {} names",
                map.len(),
                sizes.stats_tasks
            )));
        }
    }
    let mut figures = Figures::default();
    figures
        .add("retry_stats_ms", median_ms(retry))
        .add("task_statuses_batch_ms", median_ms(statuses));
    Ok(figures)
}

/// `history`: the per-task drain of `history_tasks` tasks on an empty
/// database, then again with `history_rows` completed tasks present.
pub(crate) async fn history(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    let tasks = sizes.history_tasks;
    bar.set_length(2 * tasks as u64);
    let ids = pipelines(dal, "history-empty", 1).await?;
    fill(dal, &ids, tasks, TaskStatus::Ready).await?;
    let mut empty = drain_loop(dal, sizes.workers, 1, bar).await?;
    check_all_claimed(&empty, tasks)?;

    let old = pipelines(dal, "history-old", sizes.history_rows.div_ceil(10_000)).await?;
    let mut left = sizes.history_rows;
    for pipeline in &old {
        let n = left.min(10_000);
        fill(dal, &[*pipeline], n, TaskStatus::Completed).await?;
        left -= n;
    }
    let ids = pipelines(dal, "history-full", 1).await?;
    fill(dal, &ids, tasks, TaskStatus::Ready).await?;
    let mut full = drain_loop(dal, sizes.workers, 1, bar).await?;
    check_all_claimed(&full, tasks)?;

    let mut figures = Figures::default();
    let mut a = Figures::default();
    a.latency("claim_p50_empty_ms", "claim_p99_empty_ms", &mut empty.claim);
    let mut b = Figures::default();
    b.latency(
        "claim_p50_history_ms",
        "claim_p99_history_ms",
        &mut full.claim,
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
            (empty.duplicates() + full.duplicates()) as f64,
        );
    Ok(figures)
}

/// `prune`: the per-task drain of `history_tasks` tasks alone, then again
/// while `prune_pipelines` deletes `history_rows` finished tasks (finished
/// pipelines of 1,000 tasks each, 10 pipelines per transaction): how much a
/// prune slows the claims that go on beside it.
pub(crate) async fn prune(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    const PER_PIPELINE: usize = 1_000;
    let tasks = sizes.history_tasks;
    bar.set_length(2 * tasks as u64);
    let ids = pipelines(dal, "prune-alone", 1).await?;
    fill(dal, &ids, tasks, TaskStatus::Ready).await?;
    let mut alone = drain_loop(dal, sizes.workers, 1, bar).await?;
    check_all_claimed(&alone, tasks)?;

    let finished = pipelines(dal, "prune-old", sizes.history_rows.div_ceil(PER_PIPELINE)).await?;
    let mut left = sizes.history_rows;
    for pipeline in &finished {
        let n = left.min(PER_PIPELINE);
        fill(dal, &[*pipeline], n, TaskStatus::Completed).await?;
        dal.update_pipeline_status(*pipeline, PipelineStatus::Completed, None)
            .await?;
        left -= n;
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
    let mut during = drain_loop(dal, sizes.workers, 1, bar).await?;
    check_all_claimed(&during, tasks)?;
    let (outcome, took) = pruner
        .await
        .map_err(|e| CliError::Bench(format!("the prune stopped: {e}")))?;
    let outcome = outcome?;
    if outcome.tasks != sizes.history_rows {
        return Err(CliError::Bench(format!(
            "pruned {} of {} finished tasks",
            outcome.tasks, sizes.history_rows
        )));
    }
    let mut figures = Figures::default();
    figures
        .latency("claim_p50_alone_ms", "claim_p99_alone_ms", &mut alone.claim)
        .latency(
            "claim_p50_during_prune_ms",
            "claim_p99_during_prune_ms",
            &mut during.claim,
        )
        .rate("drain_during_prune_tasks_per_sec", tasks, during.elapsed)
        .add("pruned_tasks", outcome.tasks as f64)
        .add("prune_secs", took.as_secs_f64())
        .add(
            "duplicates",
            (alone.duplicates() + during.duplicates()) as f64,
        );
    Ok(figures)
}

/// The engine's view of one pipeline: its plan, its tasks' ids by name,
/// and how many dependencies each waiting task still waits for.
struct EnginePipeline {
    plan: PipelinePlan,
    ids: HashMap<String, Uuid>,
    waiting: Mutex<HashMap<String, usize>>,
}

/// `engine`: the demo's DAG workload without failures. Each of
/// `engine_workers` workers loops: claim one task, load its
/// dependencies' context, work 1 ms, save its output context, complete it,
/// and mark ready each dependent whose dependencies are all complete. An
/// idle worker waits in `wait_for_ready` (at most [`ENGINE_IDLE_WAIT`]).
pub(crate) async fn engine(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    const WORK: Duration = Duration::from_millis(1);
    let demo = DemoWorkload::generate(42, sizes.engine_pipelines as u32, 0.0, false);
    let total = demo.task_count();
    bar.set_length(total as u64);

    let mut by_pipeline = HashMap::new();
    let mut roots = Vec::new();
    for plan in demo.pipelines {
        let pipeline = dal
            .create_pipeline_execution(
                NewPipelineExecution::new("bench-engine")
                    .context(json!({ "pipeline": { "index": plan.index } })),
            )
            .await?;
        let created = dal.create_many(plan.new_tasks(pipeline.id)).await?;
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

    let start = Instant::now();
    for root in roots {
        dal.mark_ready(root).await?;
    }
    let mut set = JoinSet::new();
    for _ in 0..sizes.engine_workers {
        let (dal, by_pipeline, done, wake, bar) = (
            dal.clone(),
            by_pipeline.clone(),
            done.clone(),
            wake.clone(),
            bar.clone(),
        );
        set.spawn(async move {
            let (mut claimed, mut claims) = (Vec::new(), Vec::new());
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
                claims.push(t.elapsed());
                claimed.push(task.id);
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
                tokio::time::sleep(WORK).await;
                if let Value::Object(map) = &mut context {
                    map.insert(task.task_name.clone(), json!({ "rows": claimed.len() }));
                }
                dal.complete_with_context(task.id, None, &context).await?;
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
                if !ready.is_empty() {
                    dal.mark_ready_many(ready).await?;
                }
                if done.fetch_add(1, Ordering::AcqRel) + 1 == total {
                    wake.notify_waiters();
                }
                bar.inc(1);
            }
            Ok((claimed, claims))
        });
    }
    let (mut claimed, mut claims) = (Vec::new(), Vec::new());
    for (c, l) in join_all(set).await? {
        claimed.extend(c);
        claims.extend(l);
    }
    let elapsed = start.elapsed();
    let unique: HashSet<&Uuid> = claimed.iter().collect();
    let duplicates = claimed.len() - unique.len();
    let mut figures = Figures::default();
    figures
        .rate("engine_tasks_per_sec", total, elapsed)
        .latency("engine_claim_p50_ms", "engine_claim_p99_ms", &mut claims)
        .add("duplicates", duplicates as f64);
    Ok(figures)
}

/// `wakeup`: `workers` idle workers wait in `wait_for_ready`; a producer on
/// the same handle makes `wakeup_tasks` tasks ready one at a time
/// (`mark_ready`), each once the previous one was claimed and every worker
/// is waiting again. The latency runs from just before the producer's
/// `mark_ready` call (so it includes that write's commit) to the moment a
/// worker's claim returned the task.
pub(crate) async fn wakeup(
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    let total = sizes.wakeup_tasks;
    bar.set_length(total as u64);
    let pipeline = dal
        .create_pipeline_execution(NewPipelineExecution::new("bench-wakeup"))
        .await?;
    let tasks = dal
        .create_many(
            (0..total)
                .map(|i| {
                    NewTaskExecution::new(pipeline.id, format!("wake-{i:05}"))
                        .status(TaskStatus::NotStarted)
                })
                .collect(),
        )
        .await?;
    let ready_at: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let claimed_one = Arc::new(Notify::new());
    // Workers waiting now: each task is made ready only when all are idle.
    let idle = Arc::new(AtomicUsize::new(0));
    let workers = sizes.workers.max(1);
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (dal, ready_at, done, claimed_one, idle) = (
            dal.clone(),
            ready_at.clone(),
            done.clone(),
            claimed_one.clone(),
            idle.clone(),
        );
        set.spawn(async move {
            let (mut claimed, mut latencies) = (Vec::new(), Vec::new());
            while done.load(Ordering::Acquire) < total {
                let Some(task) = dal.claim_ready_task(1).await?.pop() else {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let woken = tokio::select! {
                        woken = dal.wait_for_ready(WAKEUP_IDLE_WAIT) => woken.map(|_| ()),
                        () = claimed_one.notified() => Ok(()),
                    };
                    idle.fetch_sub(1, Ordering::AcqRel);
                    woken?;
                    continue;
                };
                let at = Instant::now();
                let made_ready = ready_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&task.id)
                    .copied();
                if let Some(made_ready) = made_ready {
                    latencies.push(at.saturating_duration_since(made_ready));
                }
                claimed.push(task.id);
                dal.mark_completed(task.id, None).await?;
                done.fetch_add(1, Ordering::AcqRel);
                claimed_one.notify_waiters();
            }
            Ok((claimed, latencies))
        });
    }
    for (i, task) in tasks.iter().enumerate() {
        // Every worker back in its wait (then a moment to be in place).
        // (Bounded, so that a worker that failed cannot hang the producer:
        // its error is reported when the workers are joined.)
        let settle_by = Instant::now() + Duration::from_secs(5);
        while idle.load(Ordering::Acquire) < workers && Instant::now() < settle_by {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(WAKEUP_SETTLE).await;
        let finished = claimed_one.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        ready_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.id, Instant::now());
        dal.mark_ready(task.id).await?;
        let claim_by = tokio::time::Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::Acquire) <= i {
            if tokio::time::timeout_at(claim_by, finished.as_mut())
                .await
                .is_err()
            {
                return Err(CliError::Bench(format!(
                    "wakeup: task {} was not claimed within 60 s",
                    task.id
                )));
            }
            finished.set(claimed_one.notified());
            finished.as_mut().enable();
        }
        bar.inc(1);
    }
    claimed_one.notify_waiters();
    let (mut claimed, mut latencies) = (Vec::new(), Vec::new());
    for (c, l) in join_all(set).await? {
        claimed.extend(c);
        latencies.extend(l);
    }
    let unique: HashSet<&Uuid> = claimed.iter().collect();
    let duplicates = claimed.len() - unique.len();
    let mut figures = Figures::default();
    figures
        .add("wakeup_tasks", latencies.len() as f64)
        .latency("wakeup_p50_ms", "wakeup_p99_ms", &mut latencies)
        .add("duplicates", duplicates as f64);
    Ok(figures)
}
