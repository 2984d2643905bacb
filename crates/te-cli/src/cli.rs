//! The command line of `te`: commands, flags (also read from the
//! environment), and the parsers of their values.

use std::ops::RangeInclusive;
use std::time::Duration;

use clap::builder::RangedI64ValueParser;
use clap::{Args, Parser, Subcommand};
use task_execution_dal::prelude::PipelineStatus;
use uuid::Uuid;

/// Run pipelines of tasks on the task-execution DAL, on embedded SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "te", version, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands of `te`.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run demo pipelines with workers, failures, retries and crash recovery, then check invariants.
    Demo(DemoArgs),
    /// Apply the database migrations.
    Migrate(DbArgs),
    /// Show a pipeline's tasks, or task counts by status for the whole database.
    Status(StatusArgs),
    /// Run one pass of stale-claim recovery.
    Recover(RecoverArgs),
    /// Measure throughput and latencies of the DAL, on a fresh database per run and workload.
    Bench(BenchArgs),
    /// Cancel a pipeline execution: its unstarted tasks are skipped, running ones finish.
    Cancel(CancelArgs),
    /// Pause a pipeline execution: none of its tasks is claimed until it is resumed.
    Pause(PipelineArgs),
    /// Resume a paused pipeline execution.
    Resume(PipelineArgs),
    /// List pipeline executions, newest first, with their task counts by status.
    Pipelines(PipelinesArgs),
    /// Delete finished pipeline executions (with their tasks, contexts and events).
    Prune(PruneArgs),
}

/// Flags of `te cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The pipeline execution id.
    pub(crate) pipeline_id: Uuid,
    /// Why: stored on every skipped task.
    #[arg(long, default_value = "cancelled by operator")]
    pub(crate) reason: String,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te pause` and `te resume`.
#[derive(Debug, Args)]
pub(crate) struct PipelineArgs {
    /// The pipeline execution id.
    pub(crate) pipeline_id: Uuid,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te pipelines`.
#[derive(Debug, Args)]
pub(crate) struct PipelinesArgs {
    /// Only pipeline executions in this status (Pending, Running, Completed, Failed, Cancelled); repeatable.
    #[arg(long, value_parser = parse_pipeline_status)]
    pub(crate) status: Vec<PipelineStatus>,
    /// How many to show (the newest).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) limit: u32,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te prune`.
#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Prune pipeline executions finished longer ago than this (e.g. 7d, 12h, 30m).
    #[arg(long, value_parser = parse_age)]
    pub(crate) older_than: Duration,
    /// Only count what would be pruned.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Most pipeline executions deleted per transaction.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) batch_size: u64,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Parses a pipeline status by its name (case-insensitive).
fn parse_pipeline_status(text: &str) -> Result<PipelineStatus, String> {
    PipelineStatus::ALL
        .iter()
        .copied()
        .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            let names: Vec<&str> = PipelineStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("`{text}` is not a pipeline status ({})", names.join(", "))
        })
}

/// Parses an age: a duration as [`parse_duration`] reads it, or a whole
/// number of days followed by `d`.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    match text.trim().strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is not a duration (expected e.g. 7d, 12h, 30m)")),
        None => parse_duration(text),
    }
}

/// The database a command works on.
#[derive(Debug, Args)]
pub(crate) struct DbArgs {
    /// Database URL: postgres://user@host/db, sqlite://path/to/file.db.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: String,
}

/// Flags of `te demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Database URL; default: a SQLite file `te-demo.db` in the current directory, recreated each run.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// How many pipeline executions to create.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) pipelines: u32,
    /// How many workers claim and run tasks.
    #[arg(long, default_value_t = 4, value_parser = count(1..=256))]
    pub(crate) workers: usize,
    /// Share of task attempts that fail (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = parse_rate)]
    pub(crate) failure_rate: f64,
    /// Seed of the workload: the DAG shapes, which attempts fail, which task kills workers.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// How many tasks a worker claims at once. A worker that dies leaves all
    /// of them to recovery, so above 1, tasks that merely shared a batch with
    /// a task that kills workers can be abandoned too, and results vary by run.
    #[arg(long, default_value_t = 1, value_parser = count(1..=1000))]
    pub(crate) batch: usize,
    /// A claim whose heartbeat is older than this is recovered (workers heartbeat 5 times as often).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub(crate) stale_after: Duration,
    /// A task whose claim went stale this many times is abandoned instead of reset.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=1000))]
    pub(crate) max_recoveries: i32,
    /// Give up (and fail) when the pipelines have not all finished by then.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Run without the worker that dies mid-task and without the task that kills workers.
    #[arg(long)]
    pub(crate) no_crash: bool,
    /// Cancel this many pipeline executions mid-run (their unstarted tasks are skipped).
    #[arg(long, default_value_t = 0, value_parser = count(0..=100_000))]
    pub(crate) cancel: usize,
    /// Spread the tasks over this many queues, each served by its own pool of
    /// workers (at least one worker per queue).
    #[arg(long, default_value_t = 1, value_parser = count(1..=64))]
    pub(crate) queues: usize,
    /// Every pipeline runs at most this many tasks at once (default: 2 with
    /// more than one queue, else no limit).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub(crate) max_running: Option<i32>,
}

/// Flags of `te status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A pipeline execution id; without it, task counts for the whole database.
    pub(crate) pipeline_id: Option<Uuid>,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te recover`.
#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// A claim whose heartbeat is older than this is stale (e.g. 500ms, 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) stale_after: Duration,
    /// A stale task already recovered this many times is abandoned instead of reset.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=1000))]
    pub(crate) max_recoveries: i32,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Workloads to run (default: all), in this order: create, drain, stats, history, engine,
    /// prune, wakeup.
    #[arg(value_enum)]
    pub(crate) workloads: Vec<crate::bench::Workload>,
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

/// Parses a whole number within `range` (as `clap::value_parser!(u32).range`
/// does, with the same messages) into a `usize`.
fn count(range: RangeInclusive<i64>) -> RangedI64ValueParser<usize> {
    RangedI64ValueParser::new().range(range)
}

/// Parses a duration as `humantime` reads it (`500ms`, `60s`, `5m`, `1h`,
/// `7d`, `1h 30m`); a bare whole number is seconds. The error is one line
/// that quotes the input.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        humantime::parse_duration(&format!("{text}s"))
    } else {
        humantime::parse_duration(text)
    };
    // humantime's own message names a character offset or lists every unit
    // it knows; an example reads better on one line.
    parsed.map_err(|_| format!("`{text}` is not a duration (expected e.g. 500ms, 60s, 5m, 1h, 7d)"))
}

/// Parses a share between 0 and 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        let err = parse_duration("soon").unwrap_err();
        assert!(err.starts_with("`soon` is not a duration"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("lots").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn recover_flags_parse() {
        let cli = Cli::try_parse_from([
            "te",
            "recover",
            "--stale-after",
            "90s",
            "--max-recoveries",
            "2",
            "--database-url",
            "sqlite://x.db",
        ])
        .unwrap();
        let Command::Recover(args) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(args.stale_after, Duration::from_secs(90));
        assert_eq!(args.max_recoveries, 2);
        assert_eq!(args.db.database_url, "sqlite://x.db");
    }

    #[test]
    fn control_flags_parse() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_age("xd").is_err());
        assert_eq!(
            parse_pipeline_status("running"),
            Ok(PipelineStatus::Running)
        );
        assert!(parse_pipeline_status("done").is_err());
        let cli = Cli::try_parse_from([
            "te",
            "pipelines",
            "--status",
            "Completed",
            "--status",
            "failed",
            "--limit",
            "5",
            "--database-url",
            "sqlite://x.db",
        ])
        .unwrap();
        let Command::Pipelines(args) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(
            args.status,
            vec![PipelineStatus::Completed, PipelineStatus::Failed]
        );
        assert_eq!(args.limit, 5);
        assert!(
            Cli::try_parse_from(["te", "prune", "--older-than", "7d", "--batch-size", "0"])
                .is_err()
        );
    }

    #[test]
    fn workers_must_be_positive() {
        assert!(Cli::try_parse_from(["te", "demo", "--workers", "0"]).is_err());
    }
}
