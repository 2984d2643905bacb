//! Read-only filtering, status, completion, recovery and retry queries, and the audit log for the task-execution DAL.

use te_core::TaskExecutionDal;

/// Read-only filtering, status, completion, recovery and retry queries, and the audit log, as methods on [`TaskExecutionDal`].
pub trait TaskQueries {}

impl TaskQueries for TaskExecutionDal {}
