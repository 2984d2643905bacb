//! `te status`: a pipeline execution's tasks as a table (with their queues
//! and delays, and the pipeline's limit), or task counts by status and the
//! unfinished tasks by queue for the whole database.

use chrono::{DateTime, Utc};
use clap::Args;
use task_execution_dal::prelude::*;
use uuid::Uuid;

use crate::base::args::DbArgs;
use crate::base::error::CliError;
use crate::base::{db, output, table};

/// Flags of `te status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A pipeline execution id; without it, task counts for the whole database.
    pub(crate) pipeline_id: Option<Uuid>,
    /// The database.
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

/// The longest error text shown in a cell.
const ERROR_WIDTH: usize = 60;

/// Runs `te status`.
pub(crate) async fn run(args: StatusArgs) -> Result<(), CliError> {
    let dal = db::connect_existing(&args.db.database_url).await?;
    let target = dal.target();
    let text = match args.pipeline_id {
        Some(id) => pipeline(&dal, id).await,
        None => whole_database(&dal).await,
    }
    .map_err(|err| match err {
        CliError::Dal(err) => CliError::from_dal(err, &target),
        other => other,
    })?;
    output::print(&text)
}

/// The tasks of pipeline execution `id`.
async fn pipeline(dal: &TaskExecutionDal, id: Uuid) -> Result<String, CliError> {
    let pipeline = match dal.get_pipeline_execution(id).await {
        Err(err) if err.is_not_found() => return Err(CliError::UnknownPipeline(id)),
        other => other?,
    };
    let tasks = dal.get_all_tasks_for_pipeline(id).await?;
    let mut table = table::new(&[
        "TASK",
        "QUEUE",
        "STATUS",
        "RUN AFTER",
        ">ATTEMPT",
        ">RECOVERIES",
        "STARTED",
        "FINISHED",
        ">TOOK",
        "ERROR",
    ]);
    for t in &tasks {
        let took = match (t.started_at, t.completed_at) {
            (Some(start), Some(end)) => format!("{}ms", (end - start).num_milliseconds()),
            _ => "-".to_owned(),
        };
        table.add_row([
            t.task_name.clone(),
            t.queue.clone(),
            t.status.to_string(),
            if t.status == TaskStatus::Ready {
                delay(t.run_after.max(t.retry_at))
            } else {
                "-".to_owned()
            },
            format!("{}/{}", t.attempt, t.max_attempts),
            t.recovery_attempts.to_string(),
            clock(t.started_at),
            clock(t.completed_at),
            took,
            t.error_details.as_deref().map(shorten).unwrap_or_default(),
        ]);
    }
    let unfinished = tasks.iter().filter(|t| !t.status.is_terminal()).count();
    Ok(format!(
        "pipeline {} ({} {}): {}, started {}, {}\n\n{}\n{}\n",
        pipeline.id,
        pipeline.pipeline_name,
        pipeline.pipeline_version,
        pipeline.status,
        pipeline.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        limit_text(pipeline.max_running),
        table::render(&table),
        finished_line(tasks.len() as i64, unfinished as i64),
    ))
}

/// Task counts by status over every pipeline execution.
async fn whole_database(dal: &TaskExecutionDal) -> Result<String, CliError> {
    let counts = dal.count_tasks_by_status(None).await?;
    let mut table = table::new(&["STATUS", ">TASKS"]);
    let mut total = 0;
    let mut unfinished = 0;
    for status in TaskStatus::ALL {
        let n = counts.get(status).copied().unwrap_or(0);
        total += n;
        if !status.is_terminal() {
            unfinished += n;
        }
        table.add_row([status.to_string(), n.to_string()]);
    }
    table.add_row(["total".to_owned(), total.to_string()]);
    Ok(format!(
        "{}\n{}\n\n{}",
        table::render(&table),
        finished_line(total, unfinished),
        queues(dal).await?
    ))
}

/// The unfinished tasks by queue: ready now, delayed (by `run_after` or a
/// retry's `retry_at`), running.
async fn queues(dal: &TaskExecutionDal) -> Result<String, CliError> {
    let now = Utc::now();
    let mut by_queue: std::collections::BTreeMap<String, [i64; 3]> = Default::default();
    let mut after = None;
    loop {
        let page = dal
            .list_tasks(TaskFilter {
                statuses: vec![TaskStatus::Ready, TaskStatus::Running],
                limit: 1_000,
                after,
                ..TaskFilter::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for t in &page {
            let counts = by_queue.entry(t.queue.clone()).or_default();
            let column = match t.status {
                TaskStatus::Running => 2,
                _ if t.run_after.max(t.retry_at).is_some_and(|at| at > now) => 1,
                _ => 0,
            };
            counts[column] += 1;
        }
    }
    if by_queue.is_empty() {
        return Ok("no task ready or running in any queue\n".to_owned());
    }
    let mut table = table::new(&["QUEUE", ">READY", ">DELAYED", ">RUNNING"]);
    for (queue, [ready, delayed, running]) in by_queue {
        table.add_row([
            queue,
            ready.to_string(),
            delayed.to_string(),
            running.to_string(),
        ]);
    }
    Ok(format!("{}\n", table::render(&table)))
}

/// The pipeline's limit, as the header of `te status` says it.
fn limit_text(max_running: Option<i32>) -> String {
    match max_running {
        Some(n) => format!("at most {n} tasks running at once"),
        None => "no limit on tasks running at once".to_owned(),
    }
}

/// When a delayed task becomes due: `-` when it is not delayed.
fn delay(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".to_owned(), |t| {
        t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    })
}

fn finished_line(total: i64, unfinished: i64) -> String {
    if unfinished == 0 {
        format!("{total} tasks, all finished")
    } else {
        format!("{total} tasks, {unfinished} not finished")
    }
}

fn clock(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".to_owned(), |t| t.format("%H:%M:%S%.3f").to_string())
}

fn shorten(text: &str) -> String {
    let text = crate::base::error::one_line(text);
    if text.chars().count() <= ERROR_WIDTH {
        text
    } else {
        let mut short: String = text.chars().take(ERROR_WIDTH - 1).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_shortened_to_one_line() {
        assert_eq!(shorten("short\nerror"), "short error");
        let long = "x".repeat(100);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), ERROR_WIDTH);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn finished_lines() {
        assert_eq!(finished_line(10, 0), "10 tasks, all finished");
        assert_eq!(finished_line(10, 2), "10 tasks, 2 not finished");
    }
}
