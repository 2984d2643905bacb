//! Atomic claiming, runner claims, heartbeats, release, stale claims and retry scheduling for the task-execution DAL.

use te_core::TaskExecutionDal;

/// Atomic claiming, runner claims, heartbeats, release, stale claims and retry scheduling, as methods on [`TaskExecutionDal`].
pub trait TaskClaiming {}

impl TaskClaiming for TaskExecutionDal {}
