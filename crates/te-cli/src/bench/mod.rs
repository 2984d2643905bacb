//! `te bench`: measures the DAL's throughput and latencies on a fresh
//! database per run and workload, printing one JSON object per run and
//! workload (`--json`) or a table of every run with medians.
//!
//! A workload is one variant of [`Workload`] and one function in
//! [`workloads`] returning its [`report::Figures`]; adding one means adding
//! both.

mod database;
mod report;
mod workloads;

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use task_execution_dal::prelude::*;

use crate::cli::{BenchArgs, Sizes};
use crate::error::CliError;
use crate::output;
use database::FreshDb;
use report::{Figures, Summary, json_line};

/// A workload of `te bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Tasks created one by one (`create`), then in batches (`create_many`).
    Create,
    /// Ready tasks drained per task (claim 1 + `mark_completed`), then in batches.
    Drain,
    /// `get_retry_stats` and `get_task_statuses_batch` on one large pipeline.
    Stats,
    /// The per-task drain with many finished tasks present, against none.
    History,
    /// The demo's DAG workload: claim, load context, work, save, complete, promote.
    Engine,
    /// The per-task drain alone, then beside a prune of many finished tasks.
    Prune,
    /// Idle workers in `wait_for_ready`; one task made ready at a time: ready-to-claimed latency.
    Wakeup,
}

impl Workload {
    /// Every workload, in the order `te bench` runs them.
    pub(crate) const ALL: &[Workload] = &[
        Workload::Create,
        Workload::Drain,
        Workload::Stats,
        Workload::History,
        Workload::Engine,
        Workload::Prune,
        Workload::Wakeup,
    ];

    /// Its name on the command line and in the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Drain => "drain",
            Workload::Stats => "stats",
            Workload::History => "history",
            Workload::Engine => "engine",
            Workload::Prune => "prune",
            Workload::Wakeup => "wakeup",
        }
    }

    /// Connections the workload's pool needs.
    fn connections(self, sizes: &Sizes) -> usize {
        match self {
            Workload::Engine => sizes.engine_workers,
            Workload::Wakeup => sizes.workers + 1,
            _ => sizes.workers,
        }
        .max(2)
    }

    /// Runs the workload on `dal`.
    async fn run(
        self,
        dal: &TaskExecutionDal,
        sizes: &Sizes,
        bar: &ProgressBar,
    ) -> Result<Figures, CliError> {
        let run = workloads::Run { dal, sizes, bar };
        match self {
            Workload::Create => workloads::create(&run).await,
            Workload::Drain => workloads::drain(&run).await,
            Workload::Stats => workloads::stats(&run).await,
            Workload::History => workloads::history(&run).await,
            Workload::Engine => workloads::engine(&run).await,
            Workload::Prune => workloads::prune(&run).await,
            Workload::Wakeup => workloads::wakeup(&run).await,
        }
    }

    /// The sizes the workload uses, as reported beside its figures.
    fn params(self, sizes: &Sizes) -> Vec<(&'static str, u64)> {
        let n = |v: usize| v as u64;
        // `create` and `drain` work on the same pipelines, each with its own batch.
        let pipelines_and = |batch: (&'static str, usize)| {
            vec![
                ("pipelines", n(sizes.pipelines)),
                ("tasks_per_pipeline", n(sizes.tasks)),
                ("workers", n(sizes.workers)),
                (batch.0, n(batch.1)),
            ]
        };
        let mut params = match self {
            Workload::Create => pipelines_and(("batch", sizes.batch)),
            Workload::Drain => pipelines_and(("claim_batch", sizes.claim_batch)),
            Workload::Stats => vec![("stats_tasks", n(sizes.stats_tasks))],
            Workload::History | Workload::Prune => vec![
                ("history_rows", n(sizes.history_rows)),
                ("history_tasks", n(sizes.history_tasks)),
                ("workers", n(sizes.workers)),
            ],
            Workload::Engine => vec![
                ("engine_pipelines", n(sizes.engine_pipelines)),
                ("workers", n(sizes.engine_workers)),
                ("work_ms", 1),
            ],
            Workload::Wakeup => vec![
                ("workers", n(sizes.workers)),
                ("tasks", n(sizes.wakeup_tasks)),
            ],
        };
        // Whether the loaded tables were analyzed before timing (PostgreSQL).
        params.push(("analyzed", u64::from(!sizes.no_analyze)));
        params
    }
}

/// Runs `te bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), CliError> {
    let sizes = &args.sizes;
    let selected: Vec<Workload> = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    let mut summary = Summary::default();
    for run in 1..=args.runs {
        for workload in &selected {
            let bar = progress_bar(workload.name(), run, args.runs);
            let (backend, figures) =
                once(*workload, args.database_url.as_deref(), sizes, &bar).await;
            bar.finish_and_clear();
            let figures = figures?;
            if args.json {
                let line = json_line(
                    workload.name(),
                    backend,
                    run,
                    &workload.params(sizes),
                    &figures,
                );
                output::print(&format!("{line}\n"))?;
            }
            summary.record(workload.name(), run, &figures);
        }
    }
    if !args.json {
        output::print(&summary.render())?;
    }
    Ok(())
}

/// One run of `workload` on a fresh database, removed afterwards whether
/// the run succeeded, failed or was interrupted (Ctrl-C).
async fn once(
    workload: Workload,
    url: Option<&str>,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> (Backend, Result<Figures, CliError>) {
    let backend = match url {
        Some(url) if database::is_postgres(url) => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let fresh = match FreshDb::create(url).await {
        Ok(fresh) => fresh,
        Err(err) => return (backend, Err(err)),
    };
    let result = tokio::select! {
        result = async {
            let dal = database::connect(&fresh, workload.connections(sizes)).await?;
            workload.run(&dal, sizes, bar).await
        } => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Bench("interrupted".into())),
    };
    let removed = fresh.remove().await;
    (
        backend,
        result.and_then(|figures| removed.map(|()| figures)),
    )
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn progress_bar(workload: &str, run: u32, runs: u32) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:<20} [{bar:30}] {pos}/{len} {per_sec}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("{workload} run {run}/{runs}"));
    bar
}
