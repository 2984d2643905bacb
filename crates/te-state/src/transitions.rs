//! The transitions of [`TaskState`], each a [`Move`] and the columns it sets.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde_json::json;
use te_core::schema::task_executions as te;
use te_core::transition::compare_and_set;
use te_core::{
    DalError, EventType, MultiBackend, NewEvent, SubStatus, TaskExecutionDal, TaskStatus, bind,
    record_events, validate,
};
use uuid::Uuid;

use crate::TaskState;
use crate::apply::Move;

use TaskStatus::{NotStarted, Ready, Running};

const READY_FROM: &[TaskStatus] = &[NotStarted, Ready];
const START_FROM: &[TaskStatus] = &[Ready, Running];
const RUNNING: &[TaskStatus] = &[Running];
const FAIL_FROM: &[TaskStatus] = &[NotStarted, Ready, Running];
const SKIP_FROM: &[TaskStatus] = &[NotStarted, Ready];
const RECOVER_FROM: &[TaskStatus] = &[Running, Ready];

/// Clears the runner's claim and the sub-status.
fn unclaimed()
-> impl AsChangeset<Target = te::table, Changeset = impl QueryFragment<MultiBackend> + Send + Clone>
+ Clone
+ Send
+ 'static {
    (
        te::sub_status.eq(None::<SubStatus>),
        te::claimed_by.eq(bind::opt_id(None)),
        te::heartbeat_at.eq(bind::opt_ts(None)),
    )
}

/// What every terminal status sets: `completed_at` and no claim.
fn finished(
    now: DateTime<Utc>,
) -> impl AsChangeset<Target = te::table, Changeset = impl QueryFragment<MultiBackend> + Send + Clone>
+ Clone
+ Send
+ 'static {
    (te::completed_at.eq(bind::opt_ts(Some(now))), unclaimed())
}

impl TaskState for TaskExecutionDal {
    #[tracing::instrument(skip(self), fields(task_id = %task_id))]
    async fn mark_ready(&self, task_id: Uuid) -> Result<(), DalError> {
        Move::new(task_id, READY_FROM, Ready, EventType::TaskReady)
            .apply(self, te_core::now(), te::sub_status.eq(None::<SubStatus>))
            .await
            .map(drop)
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id))]
    async fn mark_started(&self, task_id: Uuid) -> Result<(), DalError> {
        let now = te_core::now();
        let started_at = diesel::dsl::case_when(te::started_at.is_null(), bind::opt_ts(Some(now)))
            .otherwise(te::started_at);
        Move::new(task_id, START_FROM, Running, EventType::TaskStarted)
            .apply(self, now, te::started_at.eq(started_at))
            .await
            .map(drop)
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id, runner_id = ?runner_id))]
    async fn mark_completed(
        &self,
        task_id: Uuid,
        runner_id: Option<Uuid>,
    ) -> Result<bool, DalError> {
        let now = te_core::now();
        Move::new(
            task_id,
            RUNNING,
            TaskStatus::Completed,
            EventType::TaskCompleted,
        )
        .runner(runner_id)
        .apply(self, now, finished(now))
        .await
    }

    #[tracing::instrument(skip(self, task_ids), fields(count = task_ids.len(), runner_id = ?runner_id))]
    async fn mark_completed_many(
        &self,
        mut task_ids: Vec<Uuid>,
        runner_id: Option<Uuid>,
    ) -> Result<usize, DalError> {
        task_ids.sort_unstable();
        task_ids.dedup();
        if task_ids.is_empty() {
            return Ok(0);
        }
        let now = te_core::now();
        self.write(move |conn| {
            let mut changed = compare_and_set(
                conn,
                &task_ids,
                RUNNING,
                TaskStatus::Completed,
                runner_id,
                now,
                finished(now),
            )?;
            changed.sort_unstable();
            let events: Vec<NewEvent> = changed
                .iter()
                .map(|&(task_id, pipeline_id)| {
                    NewEvent::task(pipeline_id, task_id, EventType::TaskCompleted, now)
                        .runner(runner_id)
                })
                .collect();
            record_events(conn, &events)?;
            Ok(changed.len())
        })
        .await
    }

    #[tracing::instrument(skip(self, error), fields(task_id = %task_id, runner_id = ?runner_id))]
    async fn mark_failed(
        &self,
        task_id: Uuid,
        error: &str,
        runner_id: Option<Uuid>,
    ) -> Result<bool, DalError> {
        validate::text("error", error)?;
        let now = te_core::now();
        let changes = (
            finished(now),
            te::error_details.eq(error.to_owned()),
            te::last_error.eq(error.to_owned()),
        );
        Move::new(
            task_id,
            FAIL_FROM,
            TaskStatus::Failed,
            EventType::TaskFailed,
        )
        .runner(runner_id)
        .data(json!({ "error": error }))
        .apply(self, now, changes)
        .await
    }

    #[tracing::instrument(skip(self, reason), fields(task_id = %task_id))]
    async fn mark_skipped(&self, task_id: Uuid, reason: &str) -> Result<(), DalError> {
        validate::text("reason", reason)?;
        let now = te_core::now();
        Move::new(
            task_id,
            SKIP_FROM,
            TaskStatus::Skipped,
            EventType::TaskSkipped,
        )
        .data(json!({ "reason": reason }))
        .apply(
            self,
            now,
            (finished(now), te::error_details.eq(reason.to_owned())),
        )
        .await
        .map(drop)
    }

    #[tracing::instrument(skip(self, reason), fields(task_id = %task_id))]
    async fn mark_abandoned(&self, task_id: Uuid, reason: &str) -> Result<(), DalError> {
        validate::text("reason", reason)?;
        let now = te_core::now();
        let changes = (
            finished(now),
            te::error_details.eq(format!("ABANDONED: {reason}")),
            te::last_error.eq(reason.to_owned()),
        );
        Move::new(
            task_id,
            FAIL_FROM,
            TaskStatus::Failed,
            EventType::TaskAbandoned,
        )
        .data(json!({ "reason": reason }))
        .apply(self, now, changes)
        .await
        .map(drop)
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id, sub_status = ?sub_status))]
    async fn set_sub_status(
        &self,
        task_id: Uuid,
        sub_status: Option<SubStatus>,
    ) -> Result<(), DalError> {
        Move::new(task_id, RUNNING, Running, EventType::SubStatusChanged)
            .data(json!({ "sub_status": sub_status }))
            .apply(self, te_core::now(), te::sub_status.eq(sub_status))
            .await
            .map(drop)
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id))]
    async fn reset_retry_state(&self, task_id: Uuid) -> Result<(), DalError> {
        let changes = (
            te::attempt.eq(1),
            te::started_at.eq(bind::opt_ts(None)),
            te::completed_at.eq(bind::opt_ts(None)),
            te::retry_at.eq(bind::opt_ts(None)),
            te::error_details.eq(None::<String>),
            te::last_error.eq(None::<String>),
            unclaimed(),
        );
        Move::new(task_id, TaskStatus::ALL, Ready, EventType::RetryStateReset)
            .apply(self, te_core::now(), changes)
            .await
            .map(drop)
    }

    #[tracing::instrument(skip(self), fields(task_id = %task_id))]
    async fn reset_task_for_recovery(&self, task_id: Uuid) -> Result<(), DalError> {
        let now = te_core::now();
        let changes = (
            te::recovery_attempts.eq(te::recovery_attempts + 1),
            te::last_recovery_at.eq(bind::opt_ts(Some(now))),
            te::started_at.eq(bind::opt_ts(None)),
            unclaimed(),
        );
        Move::new(task_id, RECOVER_FROM, Ready, EventType::RecoveryReset)
            .apply(self, now, changes)
            .await
            .map(drop)
    }
}
