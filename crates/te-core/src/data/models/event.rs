//! `ExecutionEvent`: one entry of the audit log, and `NewEvent`, one to append.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::data::bind::{IdParam, OptIdParam, OptJsonParam, TsParam};
use crate::data::schema::execution_events;
use crate::ground::status::EventType;

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = execution_events, check_for_backend(MultiBackend))]
pub struct ExecutionEvent {
    /// The event's id.
    pub id: Uuid,
    /// The pipeline execution it concerns.
    pub pipeline_execution_id: Uuid,
    /// The task execution it concerns, for task events.
    pub task_execution_id: Option<Uuid>,
    /// What happened.
    pub event_type: EventType,
    /// Details (e.g. the error of a failure).
    pub event_data: Option<Value>,
    /// The runner that caused it, if any.
    pub runner_id: Option<Uuid>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Grows with every event written: the log's order.
    pub sequence: i64,
}

/// An event to append to the audit log.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = execution_events)]
pub struct NewEvent {
    /// The event's id.
    #[diesel(serialize_as = IdParam)]
    pub id: Uuid,
    /// The pipeline execution it concerns.
    #[diesel(serialize_as = IdParam)]
    pub pipeline_execution_id: Uuid,
    /// The task execution it concerns.
    #[diesel(serialize_as = OptIdParam)]
    pub task_execution_id: Option<Uuid>,
    /// What happened.
    pub event_type: EventType,
    /// Details.
    #[diesel(serialize_as = OptJsonParam)]
    pub event_data: Option<Value>,
    /// The runner that caused it.
    #[diesel(serialize_as = OptIdParam)]
    pub runner_id: Option<Uuid>,
    /// When it happened.
    #[diesel(serialize_as = TsParam)]
    pub created_at: DateTime<Utc>,
}

impl NewEvent {
    /// Bound parameters one row takes in a multi-row insert (one per column).
    pub(crate) const BINDS_PER_ROW: usize = 7;

    /// An event of `event_type` about task `task_id` of pipeline `pipeline_id`.
    pub fn task(
        pipeline_id: Uuid,
        task_id: Uuid,
        event_type: EventType,
        now: DateTime<Utc>,
    ) -> Self {
        NewEvent {
            task_execution_id: Some(task_id),
            ..NewEvent::pipeline(pipeline_id, event_type, now)
        }
    }

    /// An event of `event_type` about pipeline execution `pipeline_id` itself.
    pub fn pipeline(pipeline_id: Uuid, event_type: EventType, now: DateTime<Utc>) -> Self {
        NewEvent {
            id: crate::ground::clock::new_id(),
            pipeline_execution_id: pipeline_id,
            task_execution_id: None,
            event_type,
            event_data: None,
            runner_id: None,
            created_at: now,
        }
    }

    /// Attaches details.
    pub fn data(mut self, data: Value) -> Self {
        self.event_data = Some(data);
        self
    }

    /// Attaches the runner that caused the event.
    pub fn runner(mut self, runner_id: Option<Uuid>) -> Self {
        self.runner_id = runner_id;
        self
    }
}
