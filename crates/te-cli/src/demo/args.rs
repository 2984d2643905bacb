//! The flags of `te demo`.

use std::time::Duration;

use clap::Args;

use crate::base::args::{count, parse_duration};

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

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("lots").is_err());
    }
}
