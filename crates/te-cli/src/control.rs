//! `te cancel`, `te pause`, `te resume`, `te pipelines` and `te prune`:
//! pipeline control, listing and retention from the command line.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use task_execution_dal::prelude::*;
use uuid::Uuid;

use crate::base::args::{DbArgs, count, parse_duration};
use crate::base::error::CliError;
use crate::base::{db, output, table};

/// The pipeline execution a command acts on, and its database: the flags
/// of `te pause` and `te resume`, and of `te cancel` besides its reason.
#[derive(Debug, Args)]
pub(crate) struct PipelineArgs {
    /// The pipeline execution id.
    pub(crate) pipeline_id: Uuid,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// Flags of `te cancel`.
#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The pipeline execution and its database.
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// Why: stored on every skipped task.
    #[arg(long, default_value = "cancelled by operator")]
    pub(crate) reason: String,
}

/// Flags of `te pipelines`.
#[derive(Debug, Args)]
pub(crate) struct PipelinesArgs {
    /// Only pipeline executions in this status (Pending, Running, Completed, Failed, Cancelled); repeatable.
    #[arg(long, value_parser = parse_pipeline_status)]
    pub(crate) status: Vec<PipelineStatus>,
    /// How many to show (the newest).
    #[arg(long, default_value_t = 20, value_parser = count(1..=1000))]
    pub(crate) limit: usize,
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
    #[arg(long, default_value_t = 100, value_parser = count(1..=1000))]
    pub(crate) batch_size: usize,
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

/// A not-found pipeline id becomes [`CliError::UnknownPipeline`], a missing
/// table [`CliError::NotMigrated`].
fn explain(err: DalError, id: Option<Uuid>, target: &str) -> CliError {
    match (id, &err) {
        (Some(id), DalError::NotFound { .. }) => CliError::UnknownPipeline(id),
        _ => CliError::from_dal(err, target),
    }
}

/// Runs `te cancel`.
pub(crate) async fn cancel(args: CancelArgs) -> Result<(), CliError> {
    let pipeline_id = args.pipeline.pipeline_id;
    let dal = db::connect_existing(&args.pipeline.db.database_url).await?;
    let target = dal.target();
    let outcome = dal
        .cancel_pipeline(pipeline_id, &args.reason)
        .await
        .map_err(|err| explain(err, Some(pipeline_id), &target))?;
    output::print(&format!(
        "cancelled pipeline {pipeline_id}: {} tasks skipped, {} still running\n",
        outcome.skipped, outcome.running
    ))
}

/// Runs `te pause` (`pause` true) or `te resume`.
pub(crate) async fn pause(args: PipelineArgs, pause: bool) -> Result<(), CliError> {
    let dal = db::connect_existing(&args.db.database_url).await?;
    let target = dal.target();
    let id = args.pipeline_id;
    let result = if pause {
        dal.pause_pipeline(id).await
    } else {
        dal.resume_pipeline(id).await
    };
    result.map_err(|err| explain(err, Some(id), &target))?;
    let done = if pause { "paused" } else { "resumed" };
    output::print(&format!("{done} pipeline {id}\n"))
}

/// Runs `te pipelines`: the newest `limit` pipeline executions (of the
/// statuses asked for), newest first, with their task counts by status.
pub(crate) async fn list(args: PipelinesArgs) -> Result<(), CliError> {
    let dal = db::connect_existing(&args.db.database_url).await?;
    let target = dal.target();
    let text = table(&dal, &args)
        .await
        .map_err(|err| explain(err, None, &target))?;
    output::print(&text)
}

async fn table(dal: &TaskExecutionDal, args: &PipelinesArgs) -> Result<String, DalError> {
    // Pages run oldest first; keep the newest `limit`.
    let limit = args.limit;
    let mut newest: VecDeque<PipelineExecution> = VecDeque::with_capacity(limit + 1);
    let mut pages = Pages::new(args.status.clone());
    while let Some(page) = pages.next(dal).await? {
        for pipeline in page {
            newest.push_back(pipeline);
            if newest.len() > limit {
                newest.pop_front();
            }
        }
    }
    let ids: Vec<Uuid> = newest.iter().map(|p| p.id).collect();
    let statuses = dal.get_all_task_statuses_for_pipelines(ids).await?;
    let mut header = vec!["ID", "PIPELINE", "STATUS", "CREATED", ">LIMIT", "QUEUES"];
    let titles: Vec<String> = TaskStatus::ALL.iter().map(|s| format!(">{s}")).collect();
    header.extend(titles.iter().map(String::as_str));
    let mut table = table::new(&header);
    for pipeline in newest.iter().rev() {
        let status = if pipeline.paused {
            format!("{} (paused)", pipeline.status)
        } else {
            pipeline.status.to_string()
        };
        let mut queues: Vec<String> = dal
            .get_all_tasks_for_pipeline(pipeline.id)
            .await?
            .into_iter()
            .map(|t| t.queue)
            .collect();
        queues.sort_unstable();
        queues.dedup();
        let mut row = vec![
            pipeline.id.to_string(),
            pipeline.pipeline_name.clone(),
            status,
            pipeline.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            pipeline
                .max_running
                .map_or("-".to_owned(), |n| n.to_string()),
            if queues.is_empty() {
                "-".to_owned()
            } else {
                queues.join(",")
            },
        ];
        let tasks = statuses.get(&pipeline.id);
        for task_status in TaskStatus::ALL {
            let n = tasks.map_or(0, |t| t.values().filter(|s| *s == task_status).count());
            row.push(n.to_string());
        }
        table.add_row(row);
    }
    Ok(format!(
        "{}{} pipeline executions shown, newest first\n",
        table::render(&table),
        newest.len()
    ))
}

/// Runs `te prune`: deletes terminal pipeline executions finished more than
/// `--older-than` ago, or with `--dry-run` only counts them.
pub(crate) async fn prune(args: PruneArgs) -> Result<(), CliError> {
    let dal = db::connect_existing(&args.db.database_url).await?;
    let target = dal.target();
    let age = chrono::Duration::from_std(args.older_than)
        .ok()
        .and_then(|age| Utc::now().checked_sub_signed(age))
        .ok_or_else(|| CliError::Dal(DalError::invalid("older_than", "is too large")))?;
    // The dry run refuses what the real run refuses.
    check_prune_arguments(age, args.batch_size)?;
    let text = if args.dry_run {
        let (pipelines, tasks) = would_prune(&dal, age)
            .await
            .map_err(|err| explain(err, None, &target))?;
        format!(
            "would prune {pipelines} pipeline executions finished before {} ({tasks} tasks); nothing deleted\n",
            age.format("%Y-%m-%d %H:%M:%S UTC")
        )
    } else {
        let outcome = dal
            .prune_pipelines(age, args.batch_size)
            .await
            .map_err(|err| explain(err, None, &target))?;
        format!(
            "pruned {} pipeline executions finished before {}: {} tasks, {} contexts, {} events\n",
            outcome.pipelines,
            age.format("%Y-%m-%d %H:%M:%S UTC"),
            outcome.tasks,
            outcome.contexts,
            outcome.events
        )
    };
    output::print(&text)
}

/// What `prune_pipelines` would delete: terminal pipelines finished before
/// `finished_before` with no task still running, and their tasks.
async fn would_prune(
    dal: &TaskExecutionDal,
    finished_before: chrono::DateTime<Utc>,
) -> Result<(usize, usize), DalError> {
    let mut pipelines = 0;
    let mut tasks = 0;
    let finished = PipelineStatus::ALL
        .iter()
        .copied()
        .filter(|s| s.is_terminal())
        .collect();
    let mut pages = Pages::new(finished);
    while let Some(page) = pages.next(dal).await? {
        let old: Vec<Uuid> = page
            .iter()
            .filter(|p| p.completed_at.is_some_and(|at| at < finished_before))
            .map(|p| p.id)
            .collect();
        for statuses in dal.get_all_task_statuses_for_pipelines(old).await?.values() {
            if statuses.values().all(|s| *s != TaskStatus::Running) {
                pipelines += 1;
                tasks += statuses.len();
            }
        }
    }
    Ok((pipelines, tasks))
}

/// The pipeline executions of some statuses, page by page, oldest first
/// (keyset pages of `list_pipelines`).
struct Pages {
    statuses: Vec<PipelineStatus>,
    after: Option<Uuid>,
}

impl Pages {
    fn new(statuses: Vec<PipelineStatus>) -> Self {
        Pages {
            statuses,
            after: None,
        }
    }

    /// The next page, or `None` after the last one.
    async fn next(
        &mut self,
        dal: &TaskExecutionDal,
    ) -> Result<Option<Vec<PipelineExecution>>, DalError> {
        let page = dal
            .list_pipelines(PipelineFilter {
                statuses: self.statuses.clone(),
                limit: 1_000,
                after: self.after,
                ..PipelineFilter::default()
            })
            .await?;
        self.after = page.last().map(|p| p.id);
        Ok((!page.is_empty()).then_some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_statuses_parse() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_age("xd").is_err());
        assert_eq!(
            parse_pipeline_status("running"),
            Ok(PipelineStatus::Running)
        );
        assert!(parse_pipeline_status("done").is_err());
    }
}
