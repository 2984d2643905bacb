//! Create, read, list and update of task and pipeline executions for the task-execution DAL.

use te_core::TaskExecutionDal;

/// Create, read, list and update of task and pipeline executions, as methods on [`TaskExecutionDal`].
pub trait TaskCrud {}

impl TaskCrud for TaskExecutionDal {}
