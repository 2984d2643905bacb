//! The demo's checks of queues and limits, from the audit log: no worker
//! claimed a task of another queue than its own, and no pipeline ever had
//! more tasks running at once than its `max_running`.
//!
//! The limit is checked by replaying each pipeline's events in `sequence`
//! order: a `TaskClaimed` or `TaskStarted` makes a task run; its end, its
//! retry, its reset by recovery or its abandonment stops it. The replay
//! never counts a task twice over: a claim counts the pipeline's running
//! tasks under the pipeline's limit lock before it writes its event, so an
//! end that committed before that count has the smaller sequence number.

use std::collections::{HashMap, HashSet};

use task_execution_dal::prelude::*;
use uuid::Uuid;

use super::shared::Shared;
use super::summary::Check;
use crate::base::error::CliError;

/// What the replay of one pipeline found.
#[derive(Debug, Default)]
struct Replay {
    /// The most tasks running at once.
    peak: usize,
    /// Claims by a worker of another queue than the task's.
    wrong_queue: u64,
    /// Claims checked for their queue.
    claims: u64,
}

/// The queue and limit checks of the demo (none when it ran one queue
/// without limits); problems found are added to `problems`.
pub(crate) async fn checks(
    shared: &Shared,
    problems: &mut Vec<String>,
) -> Result<Vec<Check>, CliError> {
    let settings = &shared.settings;
    if settings.queues <= 1 && settings.max_running.is_none() {
        return Ok(Vec::new());
    }
    let runners = shared.runner_queues();
    let mut peak = 0;
    let mut over = 0u64;
    let mut wrong_queue = 0u64;
    let mut claims = 0u64;
    for (pipeline_id, index) in &shared.pipelines {
        let replay = replay(&shared.dal, *pipeline_id, &runners).await?;
        peak = peak.max(replay.peak);
        wrong_queue += replay.wrong_queue;
        claims += replay.claims;
        if let Some(limit) = settings.max_running
            && replay.peak > limit as usize
        {
            over += 1;
            problems.push(format!(
                "pipeline {index} ran {} tasks at once, over its limit of {limit}",
                replay.peak
            ));
        }
        if replay.wrong_queue > 0 {
            problems.push(format!(
                "{} tasks of pipeline {index} were claimed by a worker of another queue",
                replay.wrong_queue
            ));
        }
    }
    let mut found = Vec::new();
    if settings.queues > 1 {
        found.push(Check::new(
            "no worker took a task of another queue",
            wrong_queue == 0 && claims > 0,
            format!(
                "{claims} claims over {} queues, {wrong_queue} of another queue",
                settings.queues
            ),
        ));
    }
    if let Some(limit) = settings.max_running {
        found.push(Check::new(
            "no pipeline ever ran more tasks at once than its max_running",
            over == 0,
            format!("limit {limit}, most at once {peak}, {over} pipelines over"),
        ));
    }
    Ok(found)
}

/// Replays the audit log of `pipeline_id`.
async fn replay(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    runners: &HashMap<Uuid, Option<String>>,
) -> Result<Replay, CliError> {
    let queues: HashMap<Uuid, String> = dal
        .get_all_tasks_for_pipeline(pipeline_id)
        .await?
        .into_iter()
        .map(|t| (t.id, t.queue))
        .collect();
    let mut running: HashSet<Uuid> = HashSet::new();
    let mut found = Replay::default();
    for event in dal.get_events_for_pipeline(pipeline_id).await? {
        let Some(task) = event.task_execution_id else {
            continue;
        };
        match event.event_type {
            EventType::TaskClaimed | EventType::TaskStarted => {
                running.insert(task);
                found.peak = found.peak.max(running.len());
                if event.event_type == EventType::TaskClaimed {
                    found.claims += 1;
                    let worker_queue = event
                        .runner_id
                        .and_then(|runner| runners.get(&runner).cloned().flatten());
                    if let Some(worker_queue) = worker_queue
                        && queues.get(&task) != Some(&worker_queue)
                    {
                        found.wrong_queue += 1;
                    }
                }
            }
            EventType::TaskCompleted
            | EventType::TaskFailed
            | EventType::TaskSkipped
            | EventType::TaskAbandoned
            | EventType::RetryScheduled
            | EventType::RetryStateReset
            | EventType::RecoveryReset => {
                running.remove(&task);
            }
            _ => {}
        }
    }
    Ok(found)
}
