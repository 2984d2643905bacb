//! `te migrate`: applies the DAL's migrations to the database a URL names.

use crate::base::args::DbArgs;
use crate::base::error::CliError;
use crate::base::{db, output};

/// Runs `te migrate`.
pub(crate) async fn run(args: DbArgs) -> Result<(), CliError> {
    let dal = db::connect(&args.database_url, Some(1)).await?;
    let applied = dal.migrate().await?;
    let target = dal.target();
    output::print(&match applied {
        0 => format!("{target} is up to date\n"),
        1 => format!("applied 1 migration to {target}\n"),
        n => format!("applied {n} migrations to {target}\n"),
    })
}
