//! Contexts, task execution metadata, loading task contexts and merging dependency contexts for the task-execution DAL.

use te_core::TaskExecutionDal;

/// Contexts, task execution metadata, loading task contexts and merging dependency contexts, as methods on [`TaskExecutionDal`].
pub trait TaskContexts {}

impl TaskContexts for TaskExecutionDal {}
