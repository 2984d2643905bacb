//! `TaskExecutionMetadata`: which context a task execution produced.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::connection::MultiBackend;
use crate::schema::task_execution_metadata;

/// Links a task execution to its output context; one row per task execution.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = task_execution_metadata, check_for_backend(MultiBackend))]
pub struct TaskExecutionMetadata {
    /// Primary key.
    #[diesel(serialize_as = crate::bind::Bind<crate::sql_types::DbUuid, Uuid>)]
    pub id: Uuid,
    /// The task execution.
    #[diesel(serialize_as = crate::bind::Bind<crate::sql_types::DbUuid, Uuid>)]
    pub task_execution_id: Uuid,
    /// Its pipeline execution.
    #[diesel(serialize_as = crate::bind::Bind<crate::sql_types::DbUuid, Uuid>)]
    pub pipeline_execution_id: Uuid,
    /// Its task name.
    pub task_name: String,
    /// Its output context, if saved.
    #[diesel(serialize_as = crate::bind::Bind<diesel::sql_types::Nullable<crate::sql_types::DbUuid>, Option<Uuid>>)]
    pub context_id: Option<Uuid>,
    /// When the row was created.
    #[diesel(serialize_as = crate::bind::Bind<crate::sql_types::UtcTimestamp, DateTime<Utc>>)]
    pub created_at: DateTime<Utc>,
    /// When the row was last changed.
    #[diesel(serialize_as = crate::bind::Bind<crate::sql_types::UtcTimestamp, DateTime<Utc>>)]
    pub updated_at: DateTime<Utc>,
}
