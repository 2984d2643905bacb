//! `TaskUpdate`: changing a task execution's attempts, trigger rules, configuration, priority, queue or delay.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use te_core::schema::task_executions;
use te_core::toolkit::event_data;
use te_core::toolkit::{NewEvent, bind, now, record_event, validate};
use te_core::{AnyConnection, DalError, EventType, TaskExecution};
use uuid::Uuid;

/// The fields of a task execution that `update_task` may change; `None`
/// leaves a field alone.
///
/// ```
/// # use te_crud::TaskUpdate;
/// let update = TaskUpdate { max_attempts: Some(3), ..Default::default() };
/// # let _ = update;
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskUpdate {
    /// New number of attempts allowed: at least 1.
    pub max_attempts: Option<i32>,
    /// New trigger rules: any JSON value but `null`, within the limits of
    /// [`validate::json`].
    pub trigger_rules: Option<Value>,
    /// New configuration: a JSON object, within the limits of [`validate::json`].
    pub task_configuration: Option<Value>,
    /// New claim priority (any value; higher is claimed first).
    pub priority: Option<i32>,
    /// New queue: a valid name (see [`validate::name`]).
    pub queue: Option<String>,
    /// New `run_after`: `Some(Some(instant))` delays the task until then
    /// (not before [`validate::earliest_instant`]), `Some(None)` clears the
    /// delay.
    pub run_after: Option<Option<DateTime<Utc>>>,
}

impl TaskUpdate {
    /// Checks every field that is set; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), DalError> {
        if let Some(max_attempts) = self.max_attempts {
            validate::at_least_one("max_attempts", max_attempts)?;
        }
        if let Some(rules) = &self.trigger_rules {
            if rules.is_null() {
                return Err(DalError::invalid("trigger_rules", "must not be null"));
            }
            validate::json("trigger_rules", rules)?;
        }
        if let Some(config) = &self.task_configuration {
            validate::json_object("task_configuration", config)?;
        }
        if let Some(queue) = &self.queue {
            validate::name("queue", queue)?;
        }
        if let Some(Some(run_after)) = self.run_after {
            validate::instant("run_after", run_after)?;
        }
        Ok(())
    }

    /// The names of the fields that are set, for the audit event.
    fn changed_fields(&self) -> Vec<&'static str> {
        [
            ("max_attempts", self.max_attempts.is_some()),
            ("trigger_rules", self.trigger_rules.is_some()),
            ("task_configuration", self.task_configuration.is_some()),
            ("priority", self.priority.is_some()),
            ("queue", self.queue.is_some()),
            ("run_after", self.run_after.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// `at` to the microsecond, as it is stored.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(at, 6)
}

/// Applies `update` to `task_id` and writes its `TaskUpdated` event; returns
/// the updated row. Call inside a write transaction, after validation.
pub(crate) fn apply(
    conn: &mut AnyConnection,
    task_id: Uuid,
    update: TaskUpdate,
) -> Result<TaskExecution, DalError> {
    let now = now();
    let fields = update.changed_fields();
    let changed = diesel::update(task_executions::table.find(bind::id(task_id)))
        .set((
            update
                .max_attempts
                .map(|m| task_executions::max_attempts.eq(m)),
            update
                .trigger_rules
                .map(|v| task_executions::trigger_rules.eq(bind::json(v))),
            update
                .task_configuration
                .map(|v| task_executions::task_configuration.eq(bind::json(v))),
            update.priority.map(|p| task_executions::priority.eq(p)),
            update.queue.map(|q| task_executions::queue.eq(q)),
            update
                .run_after
                .map(|at| task_executions::run_after.eq(bind::opt_ts(at.map(micros)))),
            task_executions::updated_at.eq(bind::ts(now)),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(DalError::task_not_found(task_id));
    }
    let row = crate::task::get(conn, task_id)?;
    record_event(
        conn,
        NewEvent::task(
            row.pipeline_execution_id,
            task_id,
            EventType::TaskUpdated,
            now,
        )
        .data(event_data::task_updated(&fields)),
    )?;
    Ok(row)
}
