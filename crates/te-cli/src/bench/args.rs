//! The flags of `te bench`: which workloads, where, how many runs, and the
//! workloads' sizes.

use clap::{Args, ValueEnum};

use crate::base::args::count;

/// Flags of `te bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Workloads to run (default: all), in this order: create, drain, stats, history, engine,
    /// prune, wakeup.
    #[arg(value_enum)]
    pub(crate) workloads: Vec<Workload>,
    /// Server or file to measure on; each run gets a fresh database there (PostgreSQL: a new
    /// database, dropped afterwards). Default: a new SQLite file in the temporary directory.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The sizes of the workloads.
    #[command(flatten)]
    pub(crate) sizes: Sizes,
    /// Runs of each workload.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) runs: u32,
    /// Print one JSON object per run and workload on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The sizes of `te bench`'s workloads.
#[derive(Debug, Clone, Args)]
pub(crate) struct Sizes {
    /// Pipelines of `create` and `drain`.
    #[arg(long, default_value_t = 50, value_parser = count(1..=100_000))]
    pub(crate) pipelines: usize,
    /// Tasks per pipeline of `create` and `drain`.
    #[arg(long, default_value_t = 200, value_parser = count(1..=1_000_000))]
    pub(crate) tasks: usize,
    /// Concurrent clients of `create`, `drain` and `history`; idle workers of `wakeup`.
    #[arg(long, default_value_t = 8, value_parser = count(1..=256))]
    pub(crate) workers: usize,
    /// Tasks per `create_many` call in `create`.
    #[arg(long, default_value_t = 200, value_parser = count(1..=10_000))]
    pub(crate) batch: usize,
    /// Tasks per claim in the batched half of `drain`.
    #[arg(long, default_value_t = 32, value_parser = count(1..=10_000))]
    pub(crate) claim_batch: usize,
    /// PostgreSQL: leave the freshly loaded tables without planner statistics, as they are
    /// in the first minute after a bulk load, before autovacuum analyzes them. By default
    /// they are analyzed once loaded, before anything is timed.
    #[arg(long)]
    pub(crate) no_analyze: bool,
    /// Tasks of the pipeline `stats` queries.
    #[arg(long, default_value_t = 20_000, value_parser = count(1..=1_000_000))]
    pub(crate) stats_tasks: usize,
    /// Completed tasks present while `history` drains a second time.
    #[arg(long, default_value_t = 200_000, value_parser = count(0..=10_000_000))]
    pub(crate) history_rows: usize,
    /// Tasks `history` drains each time.
    #[arg(long, default_value_t = 2_000, value_parser = count(1..=1_000_000))]
    pub(crate) history_tasks: usize,
    /// Pipelines of the demo's workload in `engine` (about 10 tasks each).
    #[arg(long, default_value_t = 100, value_parser = count(1..=100_000))]
    pub(crate) engine_pipelines: usize,
    /// Workers of `engine`.
    #[arg(long, default_value_t = 4, value_parser = count(1..=256))]
    pub(crate) engine_workers: usize,
    /// Tasks `wakeup` makes ready, one at a time.
    #[arg(long, default_value_t = 200, value_parser = count(1..=100_000))]
    pub(crate) wakeup_tasks: usize,
}

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
    pub(crate) fn connections(self, sizes: &Sizes) -> usize {
        match self {
            Workload::Engine => sizes.engine_workers,
            Workload::Wakeup => sizes.workers + 1,
            _ => sizes.workers,
        }
        .max(2)
    }

    /// The sizes the workload uses, as reported beside its figures.
    pub(crate) fn params(self, sizes: &Sizes) -> Vec<(&'static str, u64)> {
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
