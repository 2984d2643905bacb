//! A demo worker: claims ready tasks as a runner, heartbeats its claims, runs
//! each task (reads its merged dependency context, does a little work, saves
//! an output context), and on failure schedules a retry with backoff. A worker
//! may "die" mid-task: it stops at once, releasing nothing, as a killed
//! process would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use task_execution_dal::prelude::*;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::monitor::bump;
use super::shared::Shared;
use crate::base::error::CliError;
use crate::base::sync::lock;
use crate::base::workload::{MAX_ATTEMPTS, TaskPlan};

/// How long an idle worker first waits (in `wait_for_ready`) before claiming
/// again; each wait that ends without a wake-up doubles it up to
/// [`IDLE_WAIT_MAX`]. A wake-up from the database (a task may have become
/// ready, whoever wrote it) or from the scheduler cuts the wait short; the
/// bound remains for retries whose `retry_at` passes without any write.
const IDLE_WAIT_MIN: Duration = Duration::from_millis(2);
/// The longest wait between two empty claims.
const IDLE_WAIT_MAX: Duration = Duration::from_millis(50);
/// The simulated work of one attempt.
const WORK: Duration = Duration::from_millis(1);
/// The first retry's delay; each further retry waits twice as long.
const BACKOFF: Duration = Duration::from_millis(25);

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The demo stopped it.
    Stopped,
    /// It died mid-task, leaving its claims to recovery.
    Died(Uuid),
}

/// How one attempt ended.
enum Attempt {
    /// The worker died during it.
    Died,
    /// It ran to an end (completed, failed, or retry scheduled).
    Done,
    /// The runner lost its claim: someone else will run the task.
    Lost,
}

/// The claims a worker holds, heartbeated in the background. Each hold has a
/// generation, so that a late "claim lost" answer about an earlier hold of the
/// same task is not taken for the current one.
#[derive(Default)]
struct Claims {
    held: Mutex<HashMap<Uuid, (u64, bool)>>,
    next: Mutex<u64>,
}

impl Claims {
    fn hold(&self, task: Uuid) {
        let mut next = lock(&self.next);
        *next += 1;
        lock(&self.held).insert(task, (*next, false));
    }

    fn release(&self, task: Uuid) {
        lock(&self.held).remove(&task);
    }

    fn snapshot(&self) -> Vec<(Uuid, u64)> {
        lock(&self.held)
            .iter()
            .filter(|(_, (_, lost))| !lost)
            .map(|(task, (generation, _))| (*task, *generation))
            .collect()
    }

    fn mark_lost(&self, task: Uuid, generation: u64) {
        if let Some((current, lost)) = lock(&self.held).get_mut(&task)
            && *current == generation
        {
            *lost = true;
        }
    }

    fn is_lost(&self, task: Uuid) -> bool {
        lock(&self.held).get(&task).is_some_and(|(_, lost)| *lost)
    }
}

/// Aborts a background task when dropped: a dying worker's heartbeats stop with it.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a worker as runner `runner` until the demo stops or the worker dies;
/// with `dies_on: Some(n)` it dies during the `n`th task it starts. With a
/// `queue`, it claims (and waits for) tasks of that queue only.
pub(crate) async fn run(
    shared: Arc<Shared>,
    runner: Uuid,
    dies_on: Option<u64>,
    queue: Option<String>,
) -> Result<Exit, CliError> {
    shared.set_runner_queue(runner, queue.clone());
    let claims = Arc::new(Claims::default());
    let _heartbeats = AbortOnDrop(tokio::spawn(heartbeat(
        Arc::clone(&shared),
        runner,
        Arc::clone(&claims),
    )));
    let mut started = 0u64;
    let mut idle_wait = IDLE_WAIT_MIN;
    while !shared.stopping() {
        let asked = Instant::now();
        let batch = match &queue {
            Some(queue) => {
                shared
                    .dal
                    .claim_ready_tasks_for_runner_from(runner, &[queue], shared.settings.batch)
                    .await?
            }
            None => {
                shared
                    .dal
                    .claim_ready_tasks_for_runner(runner, shared.settings.batch)
                    .await?
            }
        };
        shared.monitor.claim_call(asked.elapsed(), batch.len());
        if batch.is_empty() {
            tokio::select! {
                () = shared.wake_workers.notified() => idle_wait = IDLE_WAIT_MIN,
                woken = wait(&shared, queue.as_deref(), idle_wait) => {
                    idle_wait = if woken? {
                        IDLE_WAIT_MIN
                    } else {
                        (idle_wait * 2).min(IDLE_WAIT_MAX)
                    };
                }
            }
            continue;
        }
        idle_wait = IDLE_WAIT_MIN;
        for claim in &batch {
            shared.monitor.claimed(claim.id, runner);
            claims.hold(claim.id);
        }
        for claim in batch {
            let outcome = if claims.is_lost(claim.id) {
                bump(&shared.monitor.counters.claims_lost);
                Attempt::Lost
            } else {
                let plan = shared.task_plan(claim.pipeline_execution_id, &claim.task_name)?;
                started += 1;
                shared.monitor.started(claim.id, runner);
                let dies = plan.kills_workers || dies_on == Some(started);
                attempt(&shared, runner, &claim, plan, dies, &claims).await?
            };
            if let Attempt::Died = outcome {
                bump(&shared.monitor.counters.crashes);
                return Ok(Exit::Died(runner));
            }
            shared.monitor.finished(claim.id, runner);
            claims.release(claim.id);
            shared.touch(claim.pipeline_execution_id);
        }
    }
    Ok(Exit::Stopped)
}

/// Waits for work of `queue` (any queue without one).
async fn wait(shared: &Shared, queue: Option<&str>, timeout: Duration) -> Result<bool, DalError> {
    match queue {
        Some(queue) => shared.dal.wait_for_ready_from(&[queue], timeout).await,
        None => shared.dal.wait_for_ready(timeout).await,
    }
}

/// Runs one attempt of a claimed task.
async fn attempt(
    shared: &Shared,
    runner: Uuid,
    claim: &ClaimResult,
    plan: &TaskPlan,
    dies: bool,
    claims: &Claims,
) -> Result<Attempt, CliError> {
    let dal = &shared.dal;
    let pipeline = claim.pipeline_execution_id;
    let index = shared.pipelines[&pipeline];
    let input = dal
        .load_dependency_context(pipeline, &plan.depends_on)
        .await?;
    shared.monitor.check_context(
        &format!("{} of pipeline {index}", plan.name),
        &input,
        &plan.input_keys,
    );
    if dies {
        return Ok(Attempt::Died);
    }
    tokio::time::sleep(WORK).await;
    if claims.is_lost(claim.id) {
        bump(&shared.monitor.counters.claims_lost);
        return Ok(Attempt::Lost);
    }
    let counters = &shared.monitor.counters;
    if shared
        .workload
        .attempt_fails(index, &plan.name, claim.attempt)
    {
        bump(&counters.failed_attempts);
        let error = format!(
            "attempt {} of {} failed (simulated)",
            claim.attempt, plan.name
        );
        if !dal.mark_failed(claim.id, &error, Some(runner)).await? {
            bump(&counters.claims_lost);
            return Ok(Attempt::Lost);
        }
        if claim.attempt < MAX_ATTEMPTS {
            let delay = BACKOFF * 2u32.pow((claim.attempt - 1).clamp(0, 10) as u32);
            let retry_at = chrono::Utc::now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            match dal
                .schedule_retry(claim.id, retry_at, claim.attempt + 1)
                .await
            {
                Ok(()) => bump(&counters.retries),
                // The pipeline was cancelled: no retry, the failure stands.
                Err(DalError::IllegalPipelineTransition { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        } else {
            bump(&counters.failed_for_good);
        }
        return Ok(Attempt::Done);
    }
    let output = merge_context_values(
        &input,
        &json!({ plan.name.as_str(): {
            "attempt": claim.attempt,
            "runner": runner,
            "rows": shared.workload.rows(index, &plan.name),
        }}),
    );
    // The output and the completion commit together: a completed task
    // always has its output, and a runner that lost its claim writes neither.
    if dal
        .complete_with_context(claim.id, Some(runner), &output)
        .await?
    {
        bump(&counters.completed);
        Ok(Attempt::Done)
    } else {
        bump(&counters.claims_lost);
        Ok(Attempt::Lost)
    }
}

/// Heartbeats every claim the worker holds, until aborted.
async fn heartbeat(shared: Arc<Shared>, runner: Uuid, claims: Arc<Claims>) {
    let mut ticks = tokio::time::interval(shared.settings.heartbeat_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        for (task, generation) in claims.snapshot() {
            // An error is retried at the next tick, like a real runner would.
            if let Ok(HeartbeatResult::ClaimLost) = shared.dal.heartbeat(task, runner).await {
                claims.mark_lost(task, generation);
            }
        }
    }
}
