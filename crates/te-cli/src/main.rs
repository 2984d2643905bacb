//! `te`: runs pipelines of tasks on the task-execution DAL (embedded SQLite by
//! default, or PostgreSQL), applies its migrations, shows status, recovers
//! stale claims, cancels, pauses, resumes, lists and prunes pipelines, and
//! measures the DAL (`te bench`). Errors are one line on stderr and a
//! non-zero exit.
//!
//! The floor plan: each command is a module of its own (`demo/`, `bench/`,
//! `migrate`, `status`, `recover`, `control`) with its flags beside it;
//! they stand on `base/` and never import each other; `cli` lists them.

mod base;
mod bench;
mod cli;
mod control;
mod demo;
mod migrate;
mod recover;
mod status;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use base::error::one_line;
use cli::Cli;

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
    let result = runtime.block_on(cli.command.run());
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
            let commands = cli::subcommand_names();
            let command = std::env::args()
                .skip(1)
                .find(|a| commands.iter().any(|c| c == a))
                .map(|c| format!("te {c}"))
                .unwrap_or_else(|| "te".to_owned());
            eprintln!("error: {message} (see `{command} --help`)");
            ExitCode::from(2)
        }
    }
}
