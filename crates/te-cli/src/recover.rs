//! `te recover`: one pass of stale-claim recovery
//! ([`crate::base::recovery`]) over the whole database, printing each task it
//! reset or abandoned.

use std::time::Duration;

use clap::Args;
use task_execution_dal::prelude::*;

use crate::base::args::{DbArgs, parse_duration};
use crate::base::error::CliError;
use crate::base::output::human_duration;
use crate::base::recovery::{Pass, Policy, recover_once};
use crate::base::{db, output, table};

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

/// Runs `te recover`.
pub(crate) async fn run(args: RecoverArgs) -> Result<(), CliError> {
    let dal = db::connect_existing(&args.db.database_url).await?;
    let target = dal.target();
    let policy = Policy {
        stale_after: args.stale_after,
        max_recoveries: args.max_recoveries,
    };
    let pass = recover_once(&dal, policy, |_| true)
        .await
        .map_err(|err| CliError::from_dal(err, &target))?;
    let text = report(&dal, &pass, policy).await?;
    output::print(&text)
}

/// One row per recovered task, then a line of totals.
async fn report(dal: &TaskExecutionDal, pass: &Pass, policy: Policy) -> Result<String, CliError> {
    let stale = human_duration(policy.stale_after);
    if pass.reset.is_empty() && pass.abandoned.is_empty() {
        return Ok(format!("no stale claims (no heartbeat for {stale})\n"));
    }
    let now = chrono::Utc::now();
    let mut table = table::new(&[
        "ACTION",
        "TASK ID",
        "PIPELINE ID",
        "TASK",
        "SILENT RUNNER",
        ">SILENT FOR",
        ">RECOVERIES",
    ]);
    let actions = pass
        .reset
        .iter()
        .map(|c| ("reset", c))
        .chain(pass.abandoned.iter().map(|c| ("abandoned", c)));
    for (action, claim) in actions {
        let task = dal.get_by_id(claim.task_id).await?;
        let silent = (now - claim.heartbeat_at).to_std().unwrap_or_default();
        table.add_row([
            action.to_owned(),
            claim.task_id.to_string(),
            task.pipeline_execution_id.to_string(),
            task.task_name,
            claim.claimed_by.to_string(),
            human_duration(silent),
            task.recovery_attempts.to_string(),
        ]);
    }
    Ok(format!(
        "{}\n{} reset, {} abandoned (no heartbeat for {stale}; abandoned after {} recoveries)\n",
        table::render(&table),
        pass.reset.len(),
        pass.abandoned.len(),
        policy.max_recoveries
    ))
}
