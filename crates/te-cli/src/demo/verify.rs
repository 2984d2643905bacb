//! The end-of-run checks: reads back every task of the demo from the database
//! and states each invariant as a [`Check`].

use std::collections::BTreeMap;

use task_execution_dal::prelude::*;

use super::monitor::get;
use super::shared::{PipelineOutcome, Shared};
use super::summary::Check;
use crate::base::error::CliError;

/// What the database says at the end of a run.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Final task count per status.
    pub(crate) by_status: BTreeMap<TaskStatus, u64>,
    /// Pipelines whose outcome the scheduler recorded, by outcome.
    pub(crate) completed_pipelines: u64,
    /// Pipelines that failed.
    pub(crate) failed_pipelines: u64,
    /// Pipelines the demo cancelled that ended cancelled.
    pub(crate) cancelled_pipelines: u64,
    /// Tasks of cancelled pipelines that the cancel skipped.
    pub(crate) skipped_by_cancel: u64,
    /// Retries the database counts (attempts beyond the first).
    pub(crate) db_retries: i64,
    /// The invariants.
    pub(crate) checks: Vec<Check>,
    /// Descriptions of what broke an invariant.
    pub(crate) problems: Vec<String>,
}

/// Reads the demo's tasks back and checks every invariant.
pub(crate) async fn verify(shared: &Shared) -> Result<Findings, CliError> {
    let dal = &shared.dal;
    let counters = &shared.monitor.counters;
    let ids: Vec<_> = shared.pipelines.keys().copied().collect();
    let statuses = dal.get_all_task_statuses_for_pipelines(ids.clone()).await?;
    let outcomes = shared.outcomes();
    let cancelled = shared.cancelled();
    let mut f = Findings::default();
    let mut claimed_after_cancel = 0u64;
    let mut unstarted_not_skipped = 0u64;
    let mut non_terminal = 0u64;
    let mut missing_outputs = 0u64;
    let mut inconsistent = 0u64;
    for pipeline_id in &ids {
        let index = shared.pipelines[pipeline_id];
        let tasks = statuses.get(pipeline_id).cloned().unwrap_or_default();
        let expected = shared.workload.pipelines[index as usize].tasks.len();

        if tasks.len() != expected {
            f.problems.push(format!(
                "pipeline {index} has {} tasks, {expected} were created",
                tasks.len()
            ));
            inconsistent += 1;
        }
        let plan = &shared.workload.pipelines[index as usize];
        let mut names: Vec<&String> = tasks.keys().collect();
        names.sort_by_key(|name| plan.tasks.iter().position(|t| &t.name == *name));
        for name in names {
            let status = &tasks[name];
            *f.by_status.entry(*status).or_default() += 1;
            if !status.is_terminal() {
                non_terminal += 1;
                f.problems
                    .push(format!("{name} of pipeline {index} is still {status}"));
            }
        }
        let completed: Vec<String> = tasks
            .iter()
            .filter(|(_, s)| **s == TaskStatus::Completed)
            .map(|(n, _)| n.clone())
            .collect();
        let contexts = dal
            .load_task_contexts_batch(*pipeline_id, completed.clone())
            .await?;
        for name in &completed {
            if contexts
                .get(name)
                .and_then(|c| c.get(name.as_str()))
                .is_none()
            {
                missing_outputs += 1;
                f.problems.push(format!(
                    "{name} of pipeline {index} completed without saving its output context"
                ));
            }
        }
        f.db_retries += dal.get_retry_stats(*pipeline_id).await?.total_retries;
        if cancelled.contains_key(pipeline_id) {
            let stored = dal.get_pipeline_execution(*pipeline_id).await?.status;
            let (skipped, claimed_late, not_skipped) =
                check_cancelled(dal, *pipeline_id, &tasks).await?;
            f.skipped_by_cancel += skipped;
            claimed_after_cancel += claimed_late;
            unstarted_not_skipped += not_skipped;
            if claimed_late > 0 {
                f.problems.push(format!(
                    "{claimed_late} tasks of cancelled pipeline {index} were claimed after the cancel"
                ));
            }
            if not_skipped > 0 {
                f.problems.push(format!(
                    "{not_skipped} unstarted tasks of cancelled pipeline {index} were not skipped"
                ));
            }
            match (stored, outcomes.get(pipeline_id)) {
                (PipelineStatus::Cancelled, Some(PipelineOutcome::Cancelled)) => {
                    f.cancelled_pipelines += 1;
                }
                (stored, outcome) => {
                    inconsistent += 1;
                    f.problems.push(format!(
                        "cancelled pipeline {index} is stored as {stored}, judged {outcome:?}"
                    ));
                }
            }
            continue;
        }
        let all_completed = tasks.values().all(|s| *s == TaskStatus::Completed);
        let stored = dal.get_pipeline_execution(*pipeline_id).await?.status;
        let expected = if all_completed {
            PipelineStatus::Completed
        } else {
            PipelineStatus::Failed
        };
        if stored != expected {
            inconsistent += 1;
            f.problems.push(format!(
                "pipeline {index} is stored as {stored} but its tasks say {expected}"
            ));
        }
        match outcomes.get(pipeline_id) {
            Some(PipelineOutcome::Completed) if all_completed => f.completed_pipelines += 1,
            Some(PipelineOutcome::Failed) if !all_completed => f.failed_pipelines += 1,
            Some(outcome) => {
                inconsistent += 1;
                f.problems.push(format!(
                    "pipeline {index} was judged {outcome:?} but its tasks say otherwise"
                ));
            }
            None => {
                inconsistent += 1;
                f.problems.push(format!("pipeline {index} never finished"));
            }
        }
    }

    let overlapping = get(&counters.overlapping_runs);
    let duplicates = get(&counters.duplicate_claims);
    f.checks.push(Check::new(
        "no task ran twice at once",
        overlapping == 0 && duplicates == 0,
        format!(
            "{overlapping} overlapping runs, {duplicates} duplicate claims in {} claims",
            get(&counters.claimed)
        ),
    ));
    f.checks.push(Check::new(
        "no task left non-terminal",
        non_terminal == 0,
        format!(
            "{non_terminal} of {} tasks not finished",
            shared.tasks.len()
        ),
    ));
    let checked = get(&counters.contexts_checked);
    let bad = get(&counters.context_violations);
    f.checks.push(Check::new(
        "every merged context has its dependencies' keys",
        bad == 0 && checked > 0,
        format!("{checked} input contexts checked, {bad} incomplete"),
    ));
    f.checks.push(Check::new(
        "every completed task saved its output context",
        missing_outputs == 0,
        format!("{missing_outputs} missing"),
    ));
    let retries = get(&counters.retries);
    f.checks.push(Check::new(
        "the database counts the retries the workers scheduled",
        i64::try_from(retries).is_ok_and(|r| r == f.db_retries),
        format!("workers {retries}, database {}", f.db_retries),
    ));
    f.checks.push(Check::new(
        "every pipeline ended, and is stored, as its tasks say",
        inconsistent == 0,
        format!(
            "{} completed, {} failed, {} cancelled, {inconsistent} unfinished or inconsistent",
            f.completed_pipelines, f.failed_pipelines, f.cancelled_pipelines
        ),
    ));
    if !cancelled.is_empty() {
        f.checks.push(Check::new(
            "cancelled pipelines: unstarted tasks skipped",
            unstarted_not_skipped == 0,
            format!(
                "{} pipelines cancelled, {} tasks skipped by the cancel, {unstarted_not_skipped} never started yet not skipped",
                cancelled.len(),
                f.skipped_by_cancel
            ),
        ));
        f.checks.push(Check::new(
            "cancelled pipelines: no task claimed after the cancel",
            claimed_after_cancel == 0,
            format!("{claimed_after_cancel} claims after a cancel"),
        ));
    }
    let routing = super::routing::checks(shared, &mut f.problems).await?;
    f.checks.extend(routing);
    f.problems.extend(shared.monitor.messages());
    f.problems.truncate(20);
    Ok(f)
}

/// Checks a cancelled pipeline against its audit log: returns how many of
/// its tasks the cancel skipped, how many were claimed after the cancel
/// (`TaskClaimed` after its `PipelineStatusChanged` to `Cancelled`), and how
/// many were never claimed before the cancel yet are not `Skipped`.
async fn check_cancelled(
    dal: &TaskExecutionDal,
    pipeline_id: uuid::Uuid,
    tasks: &std::collections::HashMap<String, TaskStatus>,
) -> Result<(u64, u64, u64), CliError> {
    let events = dal.get_events_for_pipeline(pipeline_id).await?;
    let cancel_at = events
        .iter()
        .find(|e| {
            is_event(
                e,
                EventType::PipelineStatusChanged,
                "to",
                PipelineStatus::Cancelled.as_str(),
            )
        })
        .map_or(i64::MAX, |e| e.sequence);
    let skipped = events
        .iter()
        .filter(|e| is_event(e, EventType::TaskSkipped, "reason", super::cancel::REASON))
        .count() as u64;
    let claimed_late = events
        .iter()
        .filter(|e| e.event_type == EventType::TaskClaimed && e.sequence > cancel_at)
        .count() as u64;
    let claimed_before: std::collections::HashSet<uuid::Uuid> = events
        .iter()
        .filter(|e| e.event_type == EventType::TaskClaimed && e.sequence < cancel_at)
        .filter_map(|e| e.task_execution_id)
        .collect();
    let rows = dal.get_all_tasks_for_pipeline(pipeline_id).await?;
    let not_skipped = rows
        .iter()
        .filter(|t| !claimed_before.contains(&t.id) && t.status != TaskStatus::Skipped)
        .count() as u64;
    debug_assert_eq!(rows.len(), tasks.len());
    Ok((skipped, claimed_late, not_skipped))
}

/// True when `event` is of type `kind` and its data has `key` set to `value`.
fn is_event(event: &ExecutionEvent, kind: EventType, key: &str, value: &str) -> bool {
    event.event_type == kind
        && event
            .event_data
            .as_ref()
            .is_some_and(|data| data[key] == value)
}
