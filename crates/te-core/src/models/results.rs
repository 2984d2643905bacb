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
