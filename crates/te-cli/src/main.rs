//! `te`: runs pipelines of tasks on the task-execution DAL (embedded SQLite by
//! default, or PostgreSQL), applies its migrations, shows status, recovers
//! stale claims, cancels, pauses, resumes, lists and prunes pipelines, and
//! measures the DAL (`te bench`). Errors are one line on stderr and a
//! non-zero exit.

mod bench;
mod cli;
mod control;
mod db;
mod demo;
mod error;
mod output;
mod recover;
mod recovery;
mod status;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{Cli, Command, DbArgs};
use error::{CliError, one_line};

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {}{place}", one_line(&message));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap writes them; a usage error becomes one
/// line on stderr and exit code 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        _ => {
            // The message is the first paragraph of clap's text (without its
            // usage and tips).
            let text = err.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|line| !line.trim().is_empty() && !line.starts_with("Usage:"))
                .collect();
            let message = one_line(&message.join(" "));
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            let command = std::env::args()
                .skip(1)
                .find(|a| {
                    [
                        "demo",
                        "migrate",
                        "status",
                        "recover",
                        "cancel",
                        "pause",
                        "resume",
                        "pipelines",
                        "prune",
                        "bench",
                    ]
                    .contains(&a.as_str())
                })
                .map(|c| format!("te {c}"))
                .unwrap_or_else(|| "te".to_owned());
            eprintln!("error: {message} (see `{command} --help`)");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Migrate(args) => migrate(args).await,
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

/// Runs `te migrate`.
async fn migrate(args: DbArgs) -> Result<(), CliError> {
    let dal = db::connect(&args.database_url, Some(1)).await?;
    let applied = dal.migrate().await?;
    let target = dal.target();
    output::print(&match applied {
        0 => format!("{target} is up to date\n"),
        1 => format!("applied 1 migration to {target}\n"),
        n => format!("applied {n} migrations to {target}\n"),
    })
}
