//! The diesel schema shared by both backends (see `migrations/` for the DDL).

diesel::table! {
    use diesel::sql_types::*;
    use crate::data::sql_types::*;

    /// JSON context documents (a pipeline's initial context, each task's output).
    contexts (id) {
        /// Primary key.
        id -> DbUuid,
        /// The document: always a JSON object.
        value -> DbJson,
        /// When the row was written first.
        created_at -> UtcTimestamp,
        /// When the row was written last.
        updated_at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::data::sql_types::*;

    /// One run of a pipeline.
    pipeline_executions (id) {
        /// Primary key.
        id -> DbUuid,
        /// The pipeline's name.
        pipeline_name -> Text,
        /// The pipeline's version.
        pipeline_version -> Text,
        /// A `PipelineStatus` name.
        status -> Text,
        /// The initial context, if any.
        context_id -> Nullable<DbUuid>,
        /// When the run started.
        started_at -> UtcTimestamp,
        /// When the run finished.
        completed_at -> Nullable<UtcTimestamp>,
        /// Why the run failed.
        error_details -> Nullable<Text>,
        /// How many times the run was recovered.
        recovery_attempts -> Integer,
        /// When the run was last recovered.
        last_recovery_at -> Nullable<UtcTimestamp>,
        /// When the row was written first.
        created_at -> UtcTimestamp,
        /// When the row was written last.
        updated_at -> UtcTimestamp,
        /// While true, none of its tasks is claimed.
        paused -> Bool,
        /// The final context, if one was stored.
        final_context_id -> Nullable<DbUuid>,
        /// At most this many of its tasks run (or are reserved) at once.
        max_running -> Nullable<Integer>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::data::sql_types::*;

    /// One execution of one task of a pipeline execution.
    task_executions (id) {
        /// Primary key.
        id -> DbUuid,
        /// The pipeline execution it belongs to.
        pipeline_execution_id -> DbUuid,
        /// The task's name, unique within its pipeline execution.
        task_name -> Text,
        /// A `TaskStatus` name.
        status -> Text,
        /// A `SubStatus` name while running.
        sub_status -> Nullable<Text>,
        /// When the current attempt started.
        started_at -> Nullable<UtcTimestamp>,
        /// When the task finished.
        completed_at -> Nullable<UtcTimestamp>,
        /// The current attempt, from 1.
        attempt -> Integer,
        /// How many attempts are allowed.
        max_attempts -> Integer,
        /// Why the task failed.
        error_details -> Nullable<Text>,
        /// When the task may run.
        trigger_rules -> DbJson,
        /// The task's configuration.
        task_configuration -> DbJson,
        /// Not claimable before this instant.
        retry_at -> Nullable<UtcTimestamp>,
        /// The error of the last failed attempt.
        last_error -> Nullable<Text>,
        /// How many times the task was reset after a crash.
        recovery_attempts -> Integer,
        /// When the task was last reset after a crash.
        last_recovery_at -> Nullable<UtcTimestamp>,
        /// The runner holding the claim.
        claimed_by -> Nullable<DbUuid>,
        /// The claim holder's last heartbeat.
        heartbeat_at -> Nullable<UtcTimestamp>,
        /// When the row was written first.
        created_at -> UtcTimestamp,
        /// When the row was written last.
        updated_at -> UtcTimestamp,
        /// Claim order: higher first.
        priority -> Integer,
        /// The queue the task is claimed from.
        queue -> Text,
        /// Not claimable before this instant.
        run_after -> Nullable<UtcTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::data::sql_types::*;

    /// The output context of a task execution; one row per task execution.
    task_execution_metadata (id) {
        /// Primary key.
        id -> DbUuid,
        /// The task execution (unique).
        task_execution_id -> DbUuid,
        /// Its pipeline execution.
        pipeline_execution_id -> DbUuid,
        /// Its task name.
        task_name -> Text,
        /// Its output context.
        context_id -> Nullable<DbUuid>,
        /// When the row was written first.
        created_at -> UtcTimestamp,
        /// When the row was written last.
        updated_at -> UtcTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::data::sql_types::*;

    /// The audit log: one row per transition.
    execution_events (sequence) {
        /// Grows with every event written.
        sequence -> BigInt,
        /// The event's id.
        id -> DbUuid,
        /// The pipeline execution.
        pipeline_execution_id -> DbUuid,
        /// The task execution, for task events.
        task_execution_id -> Nullable<DbUuid>,
        /// An `EventType` name.
        event_type -> Text,
        /// Details of the event.
        event_data -> Nullable<DbJson>,
        /// The runner that caused it.
        runner_id -> Nullable<DbUuid>,
        /// When it was written.
        created_at -> UtcTimestamp,
    }
}

diesel::joinable!(task_executions -> pipeline_executions (pipeline_execution_id));
diesel::joinable!(task_execution_metadata -> task_executions (task_execution_id));
diesel::joinable!(task_execution_metadata -> contexts (context_id));
diesel::joinable!(pipeline_executions -> contexts (context_id));

diesel::table! {
    use diesel::sql_types::*;
    use crate::sql_types::*;

    /// The limited pipeline executions (kept by a trigger from
    /// `pipeline_executions.max_running`).
    pipeline_limits (pipeline_id) {
        /// The pipeline execution.
        pipeline_id -> DbUuid,
        /// Its limit.
        max_running -> Integer,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    pipeline_limits,
    contexts,
    pipeline_executions,
    task_executions,
    task_execution_metadata,
    execution_events,
);
