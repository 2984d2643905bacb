//! `TaskExecution` (a stored row) and `NewTaskExecution` (what `create` takes).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::data::bind::{IdParam, JsonParam, OptIdParam, OptTsParam, TsParam};
use crate::data::schema::task_executions;
use crate::ground::error::DalError;
use crate::ground::status::{SubStatus, TaskStatus};
use crate::ground::validate;

/// One execution of one task, as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = task_executions, check_for_backend(MultiBackend))]
pub struct TaskExecution {
    /// Primary key.
    #[diesel(serialize_as = IdParam)]
    pub id: Uuid,
    /// The pipeline execution this task belongs to.
    #[diesel(serialize_as = IdParam)]
    pub pipeline_execution_id: Uuid,
    /// The task's name, unique within its pipeline execution.
    pub task_name: String,
    /// Where the task is in its life.
    pub status: TaskStatus,
    /// Refines `Running`.
    pub sub_status: Option<SubStatus>,
    /// When the current attempt started.
    #[diesel(serialize_as = OptTsParam)]
    pub started_at: Option<DateTime<Utc>>,
    /// When the task finished.
    #[diesel(serialize_as = OptTsParam)]
    pub completed_at: Option<DateTime<Utc>>,
    /// The current attempt, from 1.
    pub attempt: i32,
    /// How many attempts are allowed.
    pub max_attempts: i32,
    /// Why the task failed ([`TaskExecution::ABANDONED_PREFIX`] when recovery gave up).
    pub error_details: Option<String>,
    /// When the task may run (interpreted by the engine).
    #[diesel(serialize_as = JsonParam)]
    pub trigger_rules: Value,
    /// The task's configuration (a JSON object).
    #[diesel(serialize_as = JsonParam)]
    pub task_configuration: Value,
    /// The task cannot be claimed before this instant.
    #[diesel(serialize_as = OptTsParam)]
    pub retry_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// How many times the task was reset after its runner was lost.
    pub recovery_attempts: i32,
    /// When it was last reset after its runner was lost.
    #[diesel(serialize_as = OptTsParam)]
    pub last_recovery_at: Option<DateTime<Utc>>,
    /// The runner holding the claim, if any.
    #[diesel(serialize_as = OptIdParam)]
    pub claimed_by: Option<Uuid>,
    /// The claim holder's last heartbeat.
    #[diesel(serialize_as = OptTsParam)]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When the row was created.
    #[diesel(serialize_as = TsParam)]
    pub created_at: DateTime<Utc>,
    /// When the row was last changed.
    #[diesel(serialize_as = TsParam)]
    pub updated_at: DateTime<Utc>,
    /// Claim order: claims take the highest priority first, then the oldest.
    pub priority: i32,
    /// The queue it is claimed from: `claim_ready_task_from` takes tasks of
    /// the queues it names, `claim_ready_task` of every queue.
    pub queue: String,
    /// The task is not claimed before this instant (`None`: at once).
    #[diesel(serialize_as = OptTsParam)]
    pub run_after: Option<DateTime<Utc>>,
}

/// A task execution to create. `NewTaskExecution::new` fills the defaults;
/// change any public field before passing it to `create`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTaskExecution {
    /// The pipeline execution it belongs to (must exist).
    pub pipeline_execution_id: Uuid,
    /// The task's name: unique within the pipeline execution, and a valid
    /// name (see [`validate::name`]: not empty, no NUL byte, at most
    /// [`validate::MAX_NAME_BYTES`] bytes).
    pub task_name: String,
    /// Initial status; default `NotStarted`.
    pub status: TaskStatus,
    /// Initial attempt; default 1, at least 1.
    pub attempt: i32,
    /// Attempts allowed; default 1, at least 1.
    pub max_attempts: i32,
    /// Trigger rules; default `{"type":"Always"}`; any JSON value but `null`
    /// within the limits of [`validate::json`].
    pub trigger_rules: Value,
    /// Configuration; default `{}`, must be a JSON object within the limits
    /// of [`validate::json`].
    pub task_configuration: Value,
    /// Claim order; default 0. Claims take the highest priority first, then
    /// the oldest.
    pub priority: i32,
    /// The queue it is claimed from; default [`NewTaskExecution::DEFAULT_QUEUE`];
    /// a valid name (see [`validate::name`]).
    pub queue: String,
    /// Not claimed before this instant (`None`, the default: at once);
    /// not before [`validate::earliest_instant`]; stored to the microsecond.
    /// The same gate as a retry's `retry_at`.
    pub run_after: Option<DateTime<Utc>>,
}

impl TaskExecution {
    /// Bound parameters one row takes in a multi-row insert (one per column).
    pub(crate) const BINDS_PER_ROW: usize = 23;

    /// The prefix of `error_details` that marks a task abandoned by recovery
    /// (`mark_abandoned`): `ABANDONED: <reason>`.
    pub const ABANDONED_PREFIX: &'static str = "ABANDONED: ";

    /// True when recovery gave the task up: `Failed` with `error_details`
    /// starting with [`TaskExecution::ABANDONED_PREFIX`].
    pub fn is_abandoned(&self) -> bool {
        self.status == TaskStatus::Failed
            && self
                .error_details
                .as_deref()
                .is_some_and(|details| details.starts_with(Self::ABANDONED_PREFIX))
    }

    /// The `error_details` of a task abandoned for `reason`.
    #[doc(hidden)]
    pub fn abandoned_details(reason: &str) -> String {
        format!("{}{reason}", Self::ABANDONED_PREFIX)
    }
}

impl NewTaskExecution {
    /// A task named `task_name` in pipeline execution `pipeline_execution_id`,
    /// with the defaults listed on each field.
    pub fn new(pipeline_execution_id: Uuid, task_name: impl Into<String>) -> Self {
        NewTaskExecution {
            pipeline_execution_id,
            task_name: task_name.into(),
            status: TaskStatus::NotStarted,
            attempt: 1,
            max_attempts: 1,
            trigger_rules: json!({"type": "Always"}),
            task_configuration: json!({}),
            priority: 0,
            queue: Self::DEFAULT_QUEUE.to_owned(),
            run_after: None,
        }
    }

    /// The queue of a task created without one: `"default"`.
    pub const DEFAULT_QUEUE: &'static str = "default";

    /// Sets `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets `run_after`: the task is not claimed before `instant`.
    pub fn run_after(mut self, instant: DateTime<Utc>) -> Self {
        self.run_after = Some(instant);
        self
    }

    /// Sets `max_attempts`.
    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets `priority`.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets `status`.
    pub fn status(mut self, status: TaskStatus) -> Self {
        self.status = status;
        self
    }

    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), DalError> {
        validate::name("task_name", &self.task_name)?;
        validate::name("queue", &self.queue)?;
        if let Some(run_after) = self.run_after {
            validate::instant("run_after", run_after)?;
        }
        validate::at_least_one("attempt", self.attempt)?;
        validate::at_least_one("max_attempts", self.max_attempts)?;
        validate::json_object("task_configuration", &self.task_configuration)?;
        if self.trigger_rules.is_null() {
            return Err(DalError::invalid("trigger_rules", "must not be null"));
        }
        validate::json("trigger_rules", &self.trigger_rules)
    }

    /// The row this creates, with a fresh time-ordered id, stamped `now`.
    /// Call [`NewTaskExecution::validate`] first.
    pub fn into_row(self, now: DateTime<Utc>) -> TaskExecution {
        TaskExecution {
            id: crate::ground::clock::new_id(),
            pipeline_execution_id: self.pipeline_execution_id,
            task_name: self.task_name,
            status: self.status,
            sub_status: None,
            started_at: None,
            completed_at: None,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            error_details: None,
            trigger_rules: self.trigger_rules,
            task_configuration: self.task_configuration,
            retry_at: None,
            last_error: None,
            recovery_attempts: 0,
            last_recovery_at: None,
            claimed_by: None,
            heartbeat_at: None,
            created_at: now,
            updated_at: now,
            priority: self.priority,
            queue: self.queue,
            // Stored to the microsecond, as every instant.
            run_after: self
                .run_after
                .map(|at| chrono::SubsecRound::trunc_subsecs(at, 6)),
        }
    }
}
