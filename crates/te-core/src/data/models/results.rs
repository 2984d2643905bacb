//! Values returned by claiming, heartbeat, recovery and statistics operations.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A task handed to exactly one caller by a claim.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClaimResult {
    /// The task's id.
    pub id: Uuid,
    /// Its pipeline execution.
    pub pipeline_execution_id: Uuid,
    /// Its name.
    pub task_name: String,
    /// The attempt this claim runs.
    pub attempt: i32,
    /// The queue it was claimed from.
    pub queue: String,
}

/// The outcome of `claim_for_runner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerClaimResult {
    /// The runner now holds the claim.
    Claimed,
    /// Another runner holds it (or the task is not claimable).
    AlreadyClaimed,
}

/// The outcome of `heartbeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatResult {
    /// The claim is still held; its heartbeat was refreshed.
    Ok,
    /// The runner no longer holds the claim: stop working on the task.
    ClaimLost,
    /// The claim is still held (and its heartbeat refreshed), but the task's
    /// pipeline was cancelled: the runner should stop. Its guarded
    /// `mark_completed` / `mark_failed` still record the outcome.
    Cancelled,
}

/// A claim whose holder stopped sending heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaleClaim {
    /// The task.
    pub task_id: Uuid,
    /// The silent runner.
    pub claimed_by: Uuid,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// How many times the task was already recovered.
    pub recovery_attempts: i32,
}

/// Retry statistics of a pipeline execution, computed by the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct RetryStats {
    /// Tasks that ran more than one attempt.
    pub tasks_with_retries: i64,
    /// Attempts beyond the first, summed over all tasks.
    pub total_retries: i64,
    /// The highest attempt of any task.
    pub max_attempts_used: i32,
    /// Failed tasks that used every allowed attempt.
    pub tasks_exhausted_retries: i64,
}

/// What `cancel_pipeline` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct CancelOutcome {
    /// Tasks moved from `NotStarted` or `Ready` to `Skipped` by this call.
    pub skipped: usize,
    /// Tasks of the pipeline still `Running`: left to their runners.
    pub running: usize,
}

/// What `prune_pipelines` deleted, counted per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct PruneOutcome {
    /// Pipeline executions deleted.
    pub pipelines: usize,
    /// Task executions deleted (their metadata rows with them).
    pub tasks: usize,
    /// Context documents deleted (initial, final and task output contexts).
    pub contexts: usize,
    /// Audit events deleted.
    pub events: usize,
}

impl PruneOutcome {
    /// Adds the counts of `other` to these.
    pub fn add(&mut self, other: PruneOutcome) {
        self.pipelines += other.pipelines;
        self.tasks += other.tasks;
        self.contexts += other.contexts;
        self.events += other.events;
    }
}
