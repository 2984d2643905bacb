//! `PipelineExecution` (a stored row) and `NewPipelineExecution`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::data::bind::{IdParam, OptIdParam, OptTsParam, TsParam};
use crate::data::schema::pipeline_executions;
use crate::ground::error::DalError;
use crate::ground::status::PipelineStatus;
use crate::ground::validate;

/// One run of a pipeline, as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = pipeline_executions, check_for_backend(MultiBackend))]
pub struct PipelineExecution {
    /// Primary key.
    #[diesel(serialize_as = IdParam)]
    pub id: Uuid,
    /// The pipeline's name.
    pub pipeline_name: String,
    /// The pipeline's version.
    pub pipeline_version: String,
    /// Where the run is in its life.
    pub status: PipelineStatus,
    /// The initial context, if one was given.
    #[diesel(serialize_as = OptIdParam)]
    pub context_id: Option<Uuid>,
    /// When the run started.
    #[diesel(serialize_as = TsParam)]
    pub started_at: DateTime<Utc>,
    /// When the run finished.
    #[diesel(serialize_as = OptTsParam)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Why the run failed.
    pub error_details: Option<String>,
    /// How many times the run was recovered.
    pub recovery_attempts: i32,
    /// When the run was last recovered.
    #[diesel(serialize_as = OptTsParam)]
    pub last_recovery_at: Option<DateTime<Utc>>,
    /// When the row was created.
    #[diesel(serialize_as = TsParam)]
    pub created_at: DateTime<Utc>,
    /// When the row was last changed.
    #[diesel(serialize_as = TsParam)]
    pub updated_at: DateTime<Utc>,
    /// While true, none of its tasks is claimed (`pause_pipeline`).
    pub paused: bool,
    /// The final context (`set_pipeline_final_context`), if one was stored.
    #[diesel(serialize_as = OptIdParam)]
    pub final_context_id: Option<Uuid>,
    /// At most this many of its tasks are `Running` or reserved by a runner
    /// at once, across every worker, host and claim form (`None`: no limit).
    pub max_running: Option<i32>,
}

/// A pipeline execution to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPipelineExecution {
    /// The pipeline's name: a valid name (see [`validate::name`]: not empty,
    /// no NUL byte, at most [`validate::MAX_NAME_BYTES`] bytes).
    pub pipeline_name: String,
    /// The pipeline's version; default `"1.0"`; a valid name like
    /// `pipeline_name`.
    pub pipeline_version: String,
    /// Initial status; default `Running`.
    pub status: PipelineStatus,
    /// The initial context (a JSON object within the limits of
    /// [`validate::json`]), stored as the pipeline's context.
    pub context: Option<Value>,
    /// At most this many of its tasks `Running` or reserved by a runner at
    /// once (`None`, the default: no limit); at least 1.
    pub max_running: Option<i32>,
}

impl NewPipelineExecution {
    /// A pipeline execution of `pipeline_name` with the defaults listed on each field.
    pub fn new(pipeline_name: impl Into<String>) -> Self {
        NewPipelineExecution {
            pipeline_name: pipeline_name.into(),
            pipeline_version: "1.0".to_owned(),
            status: PipelineStatus::Running,
            context: None,
            max_running: None,
        }
    }

    /// Sets `max_running`: at most `n` of its tasks run at once.
    pub fn max_running(mut self, n: i32) -> Self {
        self.max_running = Some(n);
        self
    }

    /// Sets the initial context.
    pub fn context(mut self, context: Value) -> Self {
        self.context = Some(context);
        self
    }

    /// The row this creates, with a fresh time-ordered id, stamped `now`
    /// (`completed_at` too when the status is terminal), pointing at the stored initial context `context_id` (the `context`
    /// field itself is stored separately). Call
    /// [`NewPipelineExecution::validate`] first.
    pub fn into_row(self, context_id: Option<Uuid>, now: DateTime<Utc>) -> PipelineExecution {
        PipelineExecution {
            id: crate::ground::clock::new_id(),
            pipeline_name: self.pipeline_name,
            pipeline_version: self.pipeline_version,
            status: self.status,
            context_id,
            started_at: now,
            // A terminal initial status is stamped like a terminal transition.
            completed_at: self.status.is_terminal().then_some(now),
            error_details: None,
            recovery_attempts: 0,
            last_recovery_at: None,
            created_at: now,
            updated_at: now,
            paused: false,
            final_context_id: None,
            max_running: self.max_running,
        }
    }

    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), DalError> {
        validate::name("pipeline_name", &self.pipeline_name)?;
        validate::name("pipeline_version", &self.pipeline_version)?;
        if let Some(max_running) = self.max_running {
            validate::at_least_one("max_running", max_running)?;
        }
        if let Some(context) = &self.context {
            validate::json_object("context", context)?;
        }
        Ok(())
    }
}
