//! The workloads `te bench` measures, each on a fresh, migrated database:
//! creating tasks, draining them, the statistics queries, claiming over a
//! large history and beside a prune, the demo's engine loop, and waking idle
//! workers. One file per workload; what they share is in `common`.

mod common;
mod create;
mod drain;
mod engine;
mod history;
mod stats;
mod wakeup;

use indicatif::ProgressBar;
use task_execution_dal::prelude::*;

use super::args::{Sizes, Workload};
use super::report::Figures;
use crate::base::error::CliError;
use common::Run;

/// Runs `workload` on `dal`.
pub(crate) async fn run(
    workload: Workload,
    dal: &TaskExecutionDal,
    sizes: &Sizes,
    bar: &ProgressBar,
) -> Result<Figures, CliError> {
    let run = Run { dal, sizes, bar };
    match workload {
        Workload::Create => create::create(&run).await,
        Workload::Drain => drain::drain(&run).await,
        Workload::Stats => stats::stats(&run).await,
        Workload::History => history::history(&run).await,
        Workload::Engine => engine::engine(&run).await,
        Workload::Prune => history::prune(&run).await,
        Workload::Wakeup => wakeup::wakeup(&run).await,
    }
}
