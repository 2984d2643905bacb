//! The command line of `te`: commands, flags (also read from the
//! environment), and the parsers of their values.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
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
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) workers: u32,
    /// Share of task attempts that fail (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = parse_rate)]
    pub(crate) failure_rate: f64,
    /// Seed of the workload: the DAG shapes, which attempts fail, which task kills workers.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// How many tasks a worker claims at once. A worker that dies leaves all
    /// of them to recovery, so above 1, tasks that merely shared a batch with
    /// a task that kills workers can be abandoned too, and results vary by run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) batch: u32,
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
    /// Workloads to run (default: all), in this order: create, drain, stats, history, engine.
    #[arg(value_enum)]
    pub(crate) workloads: Vec<crate::bench::Workload>,
    /// Server or file to measure on; each run gets a fresh database there (PostgreSQL: a new
    /// database, dropped afterwards). Default: a new SQLite file in the temporary directory.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// Pipelines of `create` and `drain`.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) pipelines: u32,
    /// Tasks per pipeline of `create` and `drain`.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) tasks: u32,
    /// Concurrent clients of `create`, `drain` and `history`.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) workers: u32,
    /// Tasks per `create_many` call in `create`.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) batch: u32,
    /// Tasks per claim in the batched half of `drain`.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) claim_batch: u32,
    /// Tasks of the pipeline `stats` queries.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) stats_tasks: u32,
    /// Completed tasks present while `history` drains a second time.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub(crate) history_rows: u32,
    /// Tasks `history` drains each time.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) history_tasks: u32,
    /// Pipelines of the demo's workload in `engine` (about 10 tasks each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) engine_pipelines: u32,
    /// Workers of `engine`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) engine_workers: u32,
    /// Runs of each workload.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) runs: u32,
    /// Print one JSON object per run and workload on stdout instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m` or `h`
/// (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let bad = || format!("`{text}` is not a duration (expected e.g. 500ms, 60s, 5m, 1h)");
    let value: u64 = number.parse().map_err(|_| bad())?;
    let millis_per_unit = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(bad)
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
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
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
    fn workers_must_be_positive() {
        assert!(Cli::try_parse_from(["te", "demo", "--workers", "0"]).is_err());
    }
}
