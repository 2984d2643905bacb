//! The command line of `te`: the one list of its commands (clap's
//! [`Command`], from which the usage message and `cargo xtask tidy` take
//! their names too), each with the flags its own module defines, and the
//! dispatch to that module.

use clap::{CommandFactory, Parser, Subcommand};

use crate::base::args::DbArgs;
use crate::base::error::CliError;
use crate::bench::args::BenchArgs;
use crate::control::{CancelArgs, PipelineArgs, PipelinesArgs, PruneArgs};
use crate::demo::args::DemoArgs;
use crate::recover::RecoverArgs;
use crate::status::StatusArgs;
use crate::{bench, control, demo, migrate, recover, status};

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

impl Command {
    /// Runs the command.
    pub(crate) async fn run(self) -> Result<(), CliError> {
        match self {
            Command::Demo(args) => demo::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Recover(args) => recover::run(args).await,
            Command::Cancel(args) => control::cancel(args).await,
            Command::Pause(args) => control::pause(args, true).await,
            Command::Resume(args) => control::pause(args, false).await,
            Command::Pipelines(args) => control::list(args).await,
            Command::Prune(args) => control::prune(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    }
}

/// The names of `te`'s subcommands, as clap knows them.
pub(crate) fn subcommand_names() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use task_execution_dal::prelude::PipelineStatus;

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
    fn subcommands_are_named_as_typed() {
        assert_eq!(
            subcommand_names(),
            [
                "demo",
                "migrate",
                "status",
                "recover",
                "bench",
                "cancel",
                "pause",
                "resume",
                "pipelines",
                "prune"
            ]
        );
    }

    #[test]
    fn workers_must_be_positive() {
        assert!(Cli::try_parse_from(["te", "demo", "--workers", "0"]).is_err());
    }
}
