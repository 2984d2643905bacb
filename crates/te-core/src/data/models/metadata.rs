//! `TaskExecutionMetadata`: which context a task execution produced.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::data::bind::{IdParam, OptIdParam, TsParam};
use crate::data::schema::task_execution_metadata;

/// Links a task execution to its output context; one row per task execution.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = task_execution_metadata, check_for_backend(MultiBackend))]
pub struct TaskExecutionMetadata {
    /// Primary key.
    #[diesel(serialize_as = IdParam)]
    pub id: Uuid,
    /// The task execution.
    #[diesel(serialize_as = IdParam)]
    pub task_execution_id: Uuid,
    /// Its pipeline execution.
    #[diesel(serialize_as = IdParam)]
    pub pipeline_execution_id: Uuid,
    /// Its task name.
    pub task_name: String,
    /// Its output context, if saved.
    #[diesel(serialize_as = OptIdParam)]
    pub context_id: Option<Uuid>,
    /// When the row was created.
    #[diesel(serialize_as = TsParam)]
    pub created_at: DateTime<Utc>,
    /// When the row was last changed.
    #[diesel(serialize_as = TsParam)]
    pub updated_at: DateTime<Utc>,
}
