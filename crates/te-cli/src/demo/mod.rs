//! `te demo`: creates pipeline executions (DAGs with fan-out and fan-in),
//! runs them with several in-process workers while attempts fail, workers die
//! and recovery resets or abandons their claims, then checks invariants
//! against the database and prints a summary.

pub(crate) mod args;
mod cancel;
mod monitor;
mod recovery;
mod routing;
mod scheduler;
mod shared;
mod summary;
mod verify;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use task_execution_dal::prelude::*;
use tokio::task::{JoinError, JoinSet};
use uuid::Uuid;

use crate::base::error::CliError;
use crate::base::output::human_duration;
use crate::base::recovery::Policy;
use crate::base::workload::{PIPELINE_NAME, Workload, queue_name};
use crate::base::{db, output};
use args::DemoArgs;
use monitor::{get, quantile};
use shared::{PipelineOutcome, Settings, Shared};
use summary::{Summary, per_second};
use verify::Findings;
use worker::Exit;

/// The demo's database when no URL is given, in the current directory.
const DEFAULT_FILE: &str = "te-demo.db";
/// The task start on which the first worker dies.
const FIRST_WORKER_DIES_ON: u64 = 3;
/// Every pipeline's `max_running` when the demo runs more than one queue
/// and `--max-running` is not given.
const DEFAULT_MAX_RUNNING: i32 = 2;
/// More worker deaths than this means something is wrong: give up.
const MAX_DEATHS: u64 = 1_000;
/// How long stopping workers may take before they are dropped.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the run phase ended.
enum End {
    /// Every pipeline execution ended.
    Finished,
    /// The timeout passed first.
    Deadline,
}

/// Runs `te demo`.
pub(crate) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            db::remove_sqlite_files(Path::new(DEFAULT_FILE))?;
            format!("sqlite://{DEFAULT_FILE}")
        }
    };
    let settings = Settings {
        workers: args.workers,
        batch: args.batch,
        recovery: Policy {
            stale_after: args.stale_after,
            max_recoveries: args.max_recoveries,
        },
        first_worker_dies_on: (!args.no_crash).then_some(FIRST_WORKER_DIES_ON),
        queues: args.queues,
        max_running: args
            .max_running
            .or((args.queues > 1).then_some(DEFAULT_MAX_RUNNING)),
    };
    if args.workers < args.queues {
        return Err(CliError::Demo(format!(
            "{} queues need at least as many workers, got {}",
            args.queues, args.workers
        )));
    }
    // Each worker uses up to two connections (its claims, its heartbeats),
    // plus the scheduler and the recovery loop.
    let dal = db::connect(&url, Some(settings.workers * 2 + 4)).await?;
    dal.run_migrations().await?;
    refuse_unfinished(&dal).await?;

    let workload = Workload::generate(args.seed, args.pipelines, args.failure_rate, !args.no_crash);
    let creating = Instant::now();
    let (pipelines, tasks) = create(&dal, &workload, &settings).await?;
    let created_in = creating.elapsed();

    let shared = Arc::new(Shared::new(dal, workload, settings, pipelines, tasks));
    let bar = progress_bar(shared.tasks.len() as u64);
    let running = Instant::now();
    let end = supervise(&shared, args.timeout, args.cancel, &bar).await;
    let ran_for = running.elapsed();
    bar.finish_and_clear();
    let end = end?;

    let findings = verify::verify(&shared).await?;
    let summary = summarize(&shared, &args, findings, end, created_in, ran_for);
    output::print(&summary.render())?;
    if summary.passed() {
        Ok(())
    } else {
        Err(CliError::Demo(format!(
            "invariant check failed: {}",
            summary.failed().join("; ")
        )))
    }
}

/// Refuses a database whose unfinished tasks the workers would claim.
async fn refuse_unfinished(dal: &TaskExecutionDal) -> Result<(), CliError> {
    let unfinished: i64 = dal
        .count_tasks_by_status(None)
        .await?
        .iter()
        .filter(|(status, _)| !status.is_terminal())
        .map(|(_, n)| n)
        .sum();
    if unfinished > 0 {
        return Err(CliError::DatabaseBusy { unfinished });
    }
    Ok(())
}

/// Creates every pipeline execution and its tasks; returns pipeline id →
/// index and task id → pipeline id.
async fn create(
    dal: &TaskExecutionDal,
    workload: &Workload,
    settings: &Settings,
) -> Result<(BTreeMap<Uuid, u32>, HashMap<Uuid, Uuid>), CliError> {
    let mut pipelines = BTreeMap::new();
    let mut tasks = HashMap::with_capacity(workload.task_count());
    for plan in &workload.pipelines {
        let mut new =
            NewPipelineExecution::new(PIPELINE_NAME).context(workload.initial_context(plan.index));
        new.max_running = settings.max_running;
        let pipeline = dal.create_pipeline_execution(new).await?;
        for task in dal
            .create_many(plan.new_tasks(pipeline.id, settings.queues))
            .await?
        {
            tasks.insert(task.id, pipeline.id);
        }
        pipelines.insert(pipeline.id, plan.index);
    }
    Ok((pipelines, tasks))
}

/// Runs the scheduler, the recovery loop and the workers (replacing each
/// worker that dies) until every pipeline ended, an error, or the timeout.
async fn supervise(
    shared: &Arc<Shared>,
    timeout: Duration,
    cancel: usize,
    bar: &ProgressBar,
) -> Result<End, CliError> {
    let mut scheduler = tokio::spawn(scheduler::run(Arc::clone(shared)));
    let mut canceller = tokio::spawn(cancel::run(Arc::clone(shared), cancel));
    let mut cancelling = true;
    let mut recovery = tokio::spawn(recovery::run(Arc::clone(shared)));
    let mut workers = JoinSet::new();
    for i in 0..shared.settings.workers {
        let dies_on = if i == 0 {
            shared.settings.first_worker_dies_on
        } else {
            None
        };
        let queue = (shared.settings.queues > 1).then(|| queue_name(i % shared.settings.queues));
        workers.spawn(worker::run(
            Arc::clone(shared),
            Uuid::new_v4(),
            dies_on,
            queue,
        ));
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut deaths = 0u64;
    let end = loop {
        tokio::select! {
            joined = &mut scheduler => break flatten("the scheduler", joined).map(|()| End::Finished),
            joined = &mut recovery => {
                break flatten("the recovery loop", joined)
                    .and_then(|()| Err(CliError::Demo("the recovery loop stopped early".into())));
            }
            Some(joined) = workers.join_next() => match flatten("a worker", joined) {
                Ok(Exit::Died(runner)) => {
                    shared.monitor.forget_runner(runner);
                    // Its replacement serves the same queue.
                    let queue = shared.runner_queue(runner);
                    deaths += 1;
                    if deaths > MAX_DEATHS {
                        break Err(CliError::Demo(format!("more than {MAX_DEATHS} workers died")));
                    }
                    workers.spawn(worker::run(Arc::clone(shared), Uuid::new_v4(), None, queue));
                }
                Ok(Exit::Stopped) => {}
                Err(err) => break Err(err),
            },
            joined = &mut canceller, if cancelling => {
                cancelling = false;
                if let Err(err) = flatten("the canceller", joined) {
                    break Err(err);
                }
            }
            () = &mut deadline => break Ok(End::Deadline),
            _ = ticks.tick() => show_progress(shared, bar),
        }
    };
    shared.stop();
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    scheduler.abort();
    recovery.abort();
    canceller.abort();
    end
}

/// The result of a spawned loop, its panic or cancellation turned into an error.
fn flatten<T>(what: &str, joined: Result<Result<T, CliError>, JoinError>) -> Result<T, CliError> {
    joined.map_err(|err| CliError::Demo(format!("{what} stopped unexpectedly: {err}")))?
}

fn progress_bar(tasks: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(tasks), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed:>4} [{bar:32}] {pos}/{len} tasks finished  {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn show_progress(shared: &Shared, bar: &ProgressBar) {
    let c = &shared.monitor.counters;
    bar.set_position(
        get(&c.completed) + get(&c.failed_for_good) + get(&c.skipped) + get(&c.abandoned),
    );
    bar.set_message(format!(
        "{} retries, {} recovered, {} abandoned, {} workers died",
        get(&c.retries),
        get(&c.recoveries),
        get(&c.abandoned),
        get(&c.crashes)
    ));
}

/// The closing summary.
fn summarize(
    shared: &Shared,
    args: &DemoArgs,
    findings: Findings,
    end: End,
    created_in: Duration,
    ran_for: Duration,
) -> Summary {
    let c = &shared.monitor.counters;
    let status = |s: TaskStatus| findings.by_status.get(&s).copied().unwrap_or(0);
    let not_finished: u64 = TaskStatus::ALL
        .iter()
        .filter(|s| !s.is_terminal())
        .map(|s| status(*s))
        .sum();
    let finished =
        status(TaskStatus::Completed) + status(TaskStatus::Failed) + status(TaskStatus::Skipped);
    let latencies = shared.monitor.sorted_latencies();
    let latency = |q| quantile(&latencies, q).map_or("-".to_owned(), human_duration);

    let mut s = Summary {
        title: format!(
            "te demo: {} pipelines ({} tasks), {} workers, failure rate {}%, seed {}, on {}",
            shared.pipelines.len(),
            shared.tasks.len(),
            shared.settings.workers,
            args.failure_rate * 100.0,
            args.seed,
            shared.dal.target()
        ),
        ..Summary::default()
    };
    s.result(
        "pipelines completed / failed",
        format!(
            "{} / {}",
            findings.completed_pipelines, findings.failed_pipelines
        ),
    );
    if args.cancel > 0 {
        let cancelled = shared.cancelled();
        let running: usize = cancelled.values().map(|c| c.running).sum();
        s.result(
            "pipelines cancelled mid-run",
            format!(
                "{} ({} asked, {} ended cancelled); {} tasks skipped, {running} running ones left to finish",
                cancelled.len(),
                args.cancel,
                findings.cancelled_pipelines,
                findings.skipped_by_cancel
            ),
        );
    }
    s.result("tasks completed", status(TaskStatus::Completed).to_string());
    s.result("tasks failed", status(TaskStatus::Failed).to_string());
    s.result("tasks skipped", status(TaskStatus::Skipped).to_string());
    s.result("tasks not finished", not_finished.to_string());
    s.result(
        "attempts run / failed",
        format!("{} / {}", get(&c.attempts), get(&c.failed_attempts)),
    );
    s.result("retries scheduled", get(&c.retries).to_string());
    s.result("workers died mid-task", get(&c.crashes).to_string());
    s.result("stale claims recovered", get(&c.recoveries).to_string());
    s.result("tasks abandoned", get(&c.abandoned).to_string());
    s.result(
        "claims lost by live workers",
        get(&c.claims_lost).to_string(),
    );
    s.result(
        "created",
        format!(
            "{} tasks in {}",
            shared.tasks.len(),
            human_duration(created_in)
        ),
    );
    s.result("ran for", human_duration(ran_for));
    s.result(
        "throughput",
        format!(
            "{:.0} tasks/s, {:.0} attempts/s",
            per_second(finished, ran_for),
            per_second(get(&c.attempts), ran_for)
        ),
    );
    s.result(
        "claim latency p50 / p99",
        format!(
            "{} / {} over {} claim calls",
            latency(0.50),
            latency(0.99),
            latencies.len()
        ),
    );
    s.checks = findings.checks;
    s.problems = findings.problems;
    if let End::Deadline = end {
        s.problems.insert(
            0,
            format!(
                "the pipelines did not all end within {}",
                human_duration(args.timeout)
            ),
        );
    }
    let outcomes = shared.outcomes();
    let example = outcomes
        .iter()
        .find(|(_, o)| **o == PipelineOutcome::Failed)
        .or_else(|| outcomes.iter().next())
        .map(|(id, _)| *id);
    if let Some(id) = example {
        s.notes.push(format!(
            "\nsee a pipeline: te status {id} --database-url {}",
            shared.dal.target()
        ));
    }
    s
}
