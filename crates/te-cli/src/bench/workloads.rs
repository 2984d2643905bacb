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

use super::report::{Figures, median_ms};
use crate::cli::Sizes;
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
    async fn settle(&self) -> Result<(), CliError> {
        if self.sizes.no_analyze || self.dal.backend() != Backend::Postgres {
            return Ok(());
        }
        self.dal
            .run(|conn| {
                use diesel::connection::SimpleConnection;
                conn.batch_execute("ANALYZE task_executions, pipeline_executions, execution_events")
                    .map_err(DalError::from)
            })
            .await?;
        Ok(())
    }
}

/// Starts `workers` workers, each the future `worker` makes.
fn spawn_workers<T, F, Fut>(workers: usize, worker: F) -> JoinSet<Result<T, CliError>>
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
async fn join_all<T: 'static>(mut set: JoinSet<Result<T, CliError>>) -> Result<Vec<T>, CliError> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        out.push(joined.map_err(|e| CliError::Bench(format!("a worker stopped: {e}")))??);
    }
    Ok(out)
}

/// `run.sizes.workers` concurrent clients share out items `0..items`: each
/// takes the next item `i` and awaits `item(dal, i)`, which returns how many
/// tasks it wrote, until none is left.
async fn share_out<F, Fut>(run: &Run<'_>, items: usize, item: F) -> Result<(), CliError>
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

/// Creates `rows` completed tasks in pipelines `{prefix}-{i}` of at most
/// `per_pipeline` tasks each; returns the pipelines (not timed).
async fn history_rows(
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

/// The tasks some workers claimed, and the latency they measured per
/// claimed task or claim call (what the workload reports as its percentiles).
#[derive(Default)]
struct Claims {
    ids: Vec<Uuid>,
    latencies: Vec<Duration>,
}

impl Claims {
    /// Every worker's claims together.
    fn merge(parts: impl IntoIterator<Item = Claims>) -> Claims {
        parts.into_iter().fold(Claims::default(), |mut all, part| {
            all.ids.extend(part.ids);
            all.latencies.extend(part.latencies);
            all
        })
    }

    /// How many distinct tasks were claimed.
    fn unique(&self) -> usize {
        self.ids.iter().collect::<HashSet<&Uuid>>().len()
    }

    /// A task id returned by more than one claim counts once per extra claim.
    fn duplicates(&self) -> usize {
        self.ids.len() - self.unique()
    }
}

/// What a drain measured: throughput, claims and completion latencies.
struct Drained {
    elapsed: Duration,
    claims: Claims,
    complete: Vec<Duration>,
}

/// W workers claim `batch` at a time (`claim_ready_task`) and complete what
/// they claimed (`mark_completed` for one, `mark_completed_many` for more)
/// until a claim comes back empty. Latencies of empty claims are left out.
/// Fails unless `expected` distinct tasks were claimed.
async fn drain_all(run: &Run<'_>, batch: usize, expected: usize) -> Result<Drained, CliError> {
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
async fn drain_new(
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

/// `wakeup`: `workers` idle workers wait in `wait_for_ready`; a producer on
/// the same handle makes `wakeup_tasks` tasks ready one at a time
/// (`mark_ready`), each once the previous one was claimed and every worker
/// is waiting again. The latency runs from just before the producer's
/// `mark_ready` call (so it includes that write's commit) to the moment a
/// worker's claim returned the task.
pub(crate) async fn wakeup(run: &Run<'_>) -> Result<Figures, CliError> {
    let (dal, total) = (run.dal, run.sizes.wakeup_tasks);
    run.bar.set_length(total as u64);
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
    let workers = run.sizes.workers.max(1);
    let set = spawn_workers(workers, || {
        let (dal, ready_at, done, claimed_one, idle) = (
            dal.clone(),
            ready_at.clone(),
            done.clone(),
            claimed_one.clone(),
            idle.clone(),
        );
        async move {
            let mut claims = Claims::default();
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
                    claims
                        .latencies
                        .push(at.saturating_duration_since(made_ready));
                }
                claims.ids.push(task.id);
                dal.mark_completed(task.id, None).await?;
                done.fetch_add(1, Ordering::AcqRel);
                claimed_one.notify_waiters();
            }
            Ok(claims)
        }
    });
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
        run.bar.inc(1);
    }
    claimed_one.notify_waiters();
    let mut claims = Claims::merge(join_all(set).await?);
    let mut figures = Figures::default();
    figures
        .add("wakeup_tasks", claims.latencies.len() as f64)
        .latency("wakeup_p50_ms", "wakeup_p99_ms", &mut claims.latencies)
        .add("duplicates", claims.duplicates() as f64);
    Ok(figures)
}
