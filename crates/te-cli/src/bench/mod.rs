//! `te bench`: measures the DAL's throughput and latencies on a fresh
//! database per run and workload, printing one JSON object per run and
//! workload (`--json`) or a table of every run with medians.
//!
//! A workload is one variant of [`Workload`] (in `args`, with the sizes it
//! reports) and one file in [`workloads`] returning its [`report::Figures`];
//! adding one means adding both.

pub(crate) mod args;
mod report;
mod sql;
mod workloads;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use task_execution_dal::prelude::*;
use te_testkit::ScratchDb;

use crate::base::error::CliError;
use crate::base::{db, output};
use args::{BenchArgs, Sizes, Workload};
use report::{Figures, Summary, json_line};

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
            let once = once(*workload, args.database_url.as_deref(), sizes, &bar).await;
            bar.finish_and_clear();
            let (backend, figures) = once?;
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

/// One run of `workload` on a fresh database (te-testkit's [`ScratchDb`]:
/// a new PostgreSQL database on the server `url` names, else a new SQLite
/// file), removed afterwards whether the run succeeded, failed or was
/// interrupted (Ctrl-C).
async fn once(
    workload: Workload,
    url: Option<&str>,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<(Backend, Figures), CliError> {
    let url = url.map(str::to_owned);
    let scratch = blocking(move || ScratchDb::at(url.as_deref(), "te_bench")).await?;
    let result = tokio::select! {
        result = async {
            let dal = db::connect(scratch.url(), Some(workload.connections(sizes))).await?;
            dal.migrate().await?;
            workloads::run(workload, &dal, sizes, bar).await
        } => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Bench("interrupted".into())),
    };
    let backend = scratch.backend();
    let removed = blocking(move || scratch.remove()).await;
    result.and_then(|figures| removed.map(|()| (backend, figures)))
}

/// Makes or removes a scratch database off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, te_testkit::ScratchError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CliError::Bench(format!("interrupted: {e}")))?
        .map_err(CliError::Scratch)
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
