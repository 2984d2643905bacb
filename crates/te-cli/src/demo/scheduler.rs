//! The scheduler: promotes `NotStarted` tasks to `Ready` once their
//! dependencies completed, skips the dependents of tasks that failed for
//! good, and decides when a pipeline execution has completed or failed. It
//! reads each pipeline's tasks (and their dependencies, from
//! `task_configuration`) from the database.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use task_execution_dal::prelude::*;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::monitor::bump;
use super::shared::{PipelineOutcome, Shared};
use crate::base::error::CliError;
use crate::base::workload::depends_on;

/// How long the scheduler sleeps when nobody wakes it.
const TICK: Duration = Duration::from_millis(20);
/// Every this many rounds every unfinished pipeline is read, touched or not
/// (recovery and retries change tasks without touching pipelines).
const FULL_SCAN_EVERY: u64 = 50;
/// At most this many pipelines are stepped at once.
const MAX_PARALLEL_STEPS: usize = 8;

/// A change the scheduler makes to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// All of its dependencies completed: make it `Ready`.
    Ready(Uuid),
    /// A dependency failed for good or was skipped: skip it.
    Skip {
        /// The task.
        id: Uuid,
        /// Why, naming the dependency.
        reason: String,
    },
}

/// What the scheduler knows of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for its dependencies.
    Waiting,
    /// Ready, running, or failed with a retry to come.
    Busy,
    Completed,
    /// Failed with no attempt left, or abandoned.
    FailedForGood,
    Skipped,
}

/// True when a `Failed` task will not run again: its last attempt failed or
/// recovery abandoned it. (A `Failed` task with attempts left is about to be
/// made `Ready` by its worker's `schedule_retry`.)
pub(crate) fn failed_for_good(task: &TaskExecution) -> bool {
    task.is_abandoned() || (task.status == TaskStatus::Failed && task.attempt >= task.max_attempts)
}

fn state_of(task: &TaskExecution) -> State {
    match task.status {
        TaskStatus::NotStarted => State::Waiting,
        TaskStatus::Ready | TaskStatus::Running => State::Busy,
        TaskStatus::Completed => State::Completed,
        TaskStatus::Skipped => State::Skipped,
        TaskStatus::Failed if failed_for_good(task) => State::FailedForGood,
        TaskStatus::Failed => State::Busy,
    }
}

/// What to do with a pipeline's tasks, and how the pipeline ends if every task
/// is then finished. Skips propagate through the whole DAG in one call.
pub(crate) fn plan(tasks: &[TaskExecution]) -> (Vec<Action>, Option<PipelineOutcome>) {
    let mut states: HashMap<&str, State> = tasks
        .iter()
        .map(|t| (t.task_name.as_str(), state_of(t)))
        .collect();
    let mut actions = Vec::new();
    loop {
        let mut changed = false;
        for task in tasks {
            if states[task.task_name.as_str()] != State::Waiting {
                continue;
            }
            let deps = depends_on(&task.task_configuration);
            let blocker = deps.iter().find(|d| {
                !matches!(
                    states.get(d.as_str()),
                    Some(State::Completed | State::Busy | State::Waiting)
                )
            });
            if let Some(dep) = blocker {
                let why = match states.get(dep.as_str()) {
                    Some(State::Skipped) => "was skipped",
                    Some(_) => "failed",
                    None => "does not exist",
                };
                actions.push(Action::Skip {
                    id: task.id,
                    reason: format!("dependency {dep} {why}"),
                });
                states.insert(&task.task_name, State::Skipped);
                changed = true;
            } else if deps
                .iter()
                .all(|d| states.get(d.as_str()) == Some(&State::Completed))
            {
                actions.push(Action::Ready(task.id));
                states.insert(&task.task_name, State::Busy);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let finished = states
        .values()
        .all(|s| matches!(s, State::Completed | State::FailedForGood | State::Skipped));
    let outcome = finished.then(|| {
        if states.values().all(|s| *s == State::Completed) {
            PipelineOutcome::Completed
        } else {
            PipelineOutcome::Failed
        }
    });
    (actions, outcome)
}

/// Runs until every pipeline execution of the demo has ended (or the demo
/// stops). Pipelines are independent, so several are stepped at once.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<(), CliError> {
    let mut unfinished: BTreeSet<Uuid> = shared.pipelines.keys().copied().collect();
    let parallel = shared.settings.workers.clamp(1, MAX_PARALLEL_STEPS);
    let mut round = 0u64;
    while !unfinished.is_empty() && !shared.stopping() {
        let touched = shared.take_touched();
        let due: Vec<Uuid> = if round.is_multiple_of(FULL_SCAN_EVERY) {
            unfinished.iter().copied().collect()
        } else {
            touched.intersection(&unfinished).copied().collect()
        };
        for chunk in due.chunks(parallel) {
            let mut steps = JoinSet::new();
            for &pipeline_id in chunk {
                let shared = Arc::clone(&shared);
                steps.spawn(async move { (pipeline_id, step(&shared, pipeline_id).await) });
            }
            while let Some(joined) = steps.join_next().await {
                let (pipeline_id, ended) = joined.map_err(|err| {
                    CliError::Demo(format!("a scheduler step stopped unexpectedly: {err}"))
                })?;
                if ended? {
                    unfinished.remove(&pipeline_id);
                }
            }
        }
        round += 1;
        tokio::select! {
            () = shared.wake_scheduler.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
    Ok(())
}

/// Reads one pipeline, applies its actions; true when the pipeline ended.
async fn step(shared: &Shared, pipeline_id: Uuid) -> Result<bool, CliError> {
    let tasks = shared.dal.get_all_tasks_for_pipeline(pipeline_id).await?;
    if shared.is_cancelled(pipeline_id) {
        return Ok(step_cancelled(shared, pipeline_id, &tasks));
    }
    let (actions, outcome) = plan(&tasks);
    // Dependents made ready in one call; skips one by one (each has its reason).
    let ready: Vec<Uuid> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Ready(id) => Some(*id),
            Action::Skip { .. } => None,
        })
        .collect();
    let wanted = ready.len();
    let promoted = if ready.is_empty() {
        0
    } else {
        shared.dal.mark_ready_many(ready).await?
    };
    for _ in 0..promoted {
        bump(&shared.monitor.counters.promoted);
    }
    if promoted < wanted {
        // Someone else moved a task: read the pipeline again next round.
        shared.touch(pipeline_id);
        shared.wake_workers_for(promoted);
        return Ok(false);
    }
    for action in actions {
        let Action::Skip { id, reason } = &action else {
            continue;
        };
        match shared.dal.mark_skipped(*id, reason).await {
            Ok(()) => bump(&shared.monitor.counters.skipped),
            // Someone else moved the task: read the pipeline again next round.
            Err(DalError::IllegalTransition { .. }) => {
                shared.touch(pipeline_id);
                return Ok(false);
            }
            Err(err) => return Err(err.into()),
        }
    }
    shared.wake_workers_for(promoted);
    match outcome {
        Some(outcome) => {
            let (status, error) = match outcome {
                PipelineOutcome::Completed => (PipelineStatus::Completed, None),
                PipelineOutcome::Failed => (
                    PipelineStatus::Failed,
                    Some("a task failed for good; its dependents were skipped"),
                ),
                PipelineOutcome::Cancelled => unreachable!("plan never cancels"),
            };
            match shared
                .dal
                .update_pipeline_status(pipeline_id, status, error)
                .await
            {
                Ok(_) => {}
                // Cancelled meanwhile: the next round handles it as such.
                Err(DalError::IllegalPipelineTransition { .. }) => {
                    shared.touch(pipeline_id);
                    return Ok(false);
                }
                Err(err) => return Err(err.into()),
            }
            shared.set_outcome(pipeline_id, outcome);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// A cancelled pipeline: nothing is made ready, and the pipeline has ended
/// once every task is finished. The DAL leaves no task of a cancelled
/// pipeline `Ready` (a retry is refused, a recovery skips the task), so the
/// demo does not cancel again: a task left `Ready` is a defect that its
/// invariant check reports.
fn step_cancelled(shared: &Shared, pipeline_id: Uuid, tasks: &[TaskExecution]) -> bool {
    let ended = tasks.iter().all(|t| t.status.is_terminal());
    if ended {
        shared.set_outcome(pipeline_id, PipelineOutcome::Cancelled);
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(name: &str, deps: &[&str], status: TaskStatus, attempt: i32) -> TaskExecution {
        let mut new = NewTaskExecution::new(Uuid::nil(), name)
            .status(status)
            .max_attempts(3);
        new.attempt = attempt;
        new.task_configuration = json!({ "depends_on": deps });
        let mut row = new.into_row(chrono::Utc::now());
        row.error_details = (status == TaskStatus::Failed).then(|| "boom".to_owned());
        row
    }

    #[test]
    fn roots_become_ready_first() {
        let tasks = vec![
            task("extract", &[], TaskStatus::NotStarted, 1),
            task("load", &["extract"], TaskStatus::NotStarted, 1),
        ];
        let (actions, outcome) = plan(&tasks);
        assert_eq!(actions, vec![Action::Ready(tasks[0].id)]);
        assert_eq!(outcome, None);
    }

    #[test]
    fn fan_in_waits_for_every_dependency() {
        let tasks = vec![
            task("a", &[], TaskStatus::Completed, 1),
            task("b", &[], TaskStatus::Running, 1),
            task("join", &["a", "b"], TaskStatus::NotStarted, 1),
        ];
        assert_eq!(plan(&tasks), (vec![], None));
        let tasks = vec![
            task("a", &[], TaskStatus::Completed, 1),
            task("b", &[], TaskStatus::Completed, 2),
            task("join", &["a", "b"], TaskStatus::NotStarted, 1),
        ];
        assert_eq!(plan(&tasks).0, vec![Action::Ready(tasks[2].id)]);
    }

    #[test]
    fn a_failure_with_attempts_left_blocks_nothing_yet() {
        let tasks = vec![
            task("a", &[], TaskStatus::Failed, 2),
            task("b", &["a"], TaskStatus::NotStarted, 1),
        ];
        assert_eq!(plan(&tasks), (vec![], None));
    }

    #[test]
    fn final_failures_skip_dependents_transitively_and_fail_the_pipeline() {
        let tasks = vec![
            task("a", &[], TaskStatus::Failed, 3),
            task("b", &["a"], TaskStatus::NotStarted, 1),
            task("c", &["b"], TaskStatus::NotStarted, 1),
            task("d", &[], TaskStatus::Completed, 1),
        ];
        let (actions, outcome) = plan(&tasks);
        assert_eq!(
            actions,
            vec![
                Action::Skip {
                    id: tasks[1].id,
                    reason: "dependency a failed".into()
                },
                Action::Skip {
                    id: tasks[2].id,
                    reason: "dependency b was skipped".into()
                },
            ]
        );
        assert_eq!(outcome, Some(PipelineOutcome::Failed));
    }

    #[test]
    fn abandoned_tasks_failed_for_good() {
        let mut a = task("a", &[], TaskStatus::Failed, 1);
        a.error_details = Some(format!("{}runner lost", TaskExecution::ABANDONED_PREFIX));
        let tasks = vec![a, task("b", &["a"], TaskStatus::NotStarted, 1)];
        let (actions, outcome) = plan(&tasks);
        assert_eq!(actions.len(), 1);
        assert_eq!(outcome, Some(PipelineOutcome::Failed));
    }

    #[test]
    fn all_completed_completes_the_pipeline() {
        let tasks = vec![
            task("a", &[], TaskStatus::Completed, 1),
            task("b", &["a"], TaskStatus::Completed, 2),
        ];
        assert_eq!(plan(&tasks), (vec![], Some(PipelineOutcome::Completed)));
    }
}
