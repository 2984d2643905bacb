//! Runner claims: taking one (`claim_for_runner`), keeping it alive
//! (`heartbeat`) and giving it up (`release_runner_claim`). Each is a
//! guarded [`Transition`]: the claim and the status are compared in the
//! `WHERE` clause. Plain functions on one connection; call them inside a
//! write transaction.

use diesel::prelude::*;
use te_core::schema::pipeline_executions;
use te_core::schema::task_executions::dsl as t;
use te_core::toolkit::{Holder, Outcome, PipelineGuard, Transition, bind, find_row, now};
use te_core::{
    AnyConnection, DalError, EventType, HeartbeatResult, PipelineStatus, RunnerClaimResult,
    TaskStatus,
};
use uuid::Uuid;

/// The statuses a runner claim is meaningful in.
pub(crate) const CLAIMABLE: &[TaskStatus] = &[TaskStatus::Ready, TaskStatus::Running];

pub(crate) fn claim_for_runner(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner_id: Uuid,
) -> Result<RunnerClaimResult, DalError> {
    let now = now();
    let outcome = Transition::new(task_id, CLAIMABLE, None)
        .holder(Holder::FreeOr(runner_id))
        // A paused (or cancelled) pipeline gives no task to anyone.
        .pipeline_guard(PipelineGuard::ReadyNotHeld)
        .event(EventType::RunnerClaimed)
        .apply(
            conn,
            now,
            (
                t::claimed_by.eq(bind::opt_id(Some(runner_id))),
                t::heartbeat_at.eq(bind::opt_ts(Some(now))),
            ),
        );
    match outcome {
        Ok(Outcome::Applied { .. }) => Ok(RunnerClaimResult::Claimed),
        Ok(Outcome::Fenced) | Err(DalError::IllegalTransition { .. }) => {
            Ok(RunnerClaimResult::AlreadyClaimed)
        }
        Err(err) => Err(err),
    }
}

pub(crate) fn heartbeat(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner_id: Uuid,
) -> Result<HeartbeatResult, DalError> {
    let outcome = Transition::new(task_id, CLAIMABLE, None)
        .holder(Holder::Runner(Some(runner_id)))
        .untouched()
        .apply(conn, now(), t::heartbeat_at.eq(bind::opt_ts(Some(now()))));
    match outcome {
        Ok(Outcome::Applied { pipeline_id }) => {
            if pipeline_status(conn, pipeline_id)? == Some(PipelineStatus::Cancelled) {
                Ok(HeartbeatResult::Cancelled)
            } else {
                Ok(HeartbeatResult::Ok)
            }
        }
        Ok(Outcome::Fenced) | Err(DalError::IllegalTransition { .. }) => {
            Ok(HeartbeatResult::ClaimLost)
        }
        Err(err) => Err(err),
    }
}

/// The status of pipeline execution `pipeline_id`, if it exists.
pub(crate) fn pipeline_status(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Option<PipelineStatus>, DalError> {
    Ok(pipeline_executions::table
        .find(bind::id(pipeline_id))
        .select(pipeline_executions::status)
        .first::<PipelineStatus>(conn)
        .optional()?)
}

pub(crate) fn release(conn: &mut AnyConnection, task_id: Uuid) -> Result<(), DalError> {
    // Read the holder, then clear the claim only if it is still that
    // holder's: the event names the runner whose claim was released. A
    // concurrent change of holder fences the write; read again.
    loop {
        let row = t::task_executions
            .find(bind::id(task_id))
            .select(t::claimed_by);
        let holder: Option<Uuid> = find_row(conn, row, || DalError::task_not_found(task_id))?;
        let Some(holder) = holder else {
            return Ok(());
        };
        let outcome = Transition::new(task_id, TaskStatus::ALL, None)
            .holder(Holder::Runner(Some(holder)))
            .event(EventType::ClaimReleased)
            .apply(
                conn,
                now(),
                (
                    t::claimed_by.eq(bind::opt_id(None)),
                    t::heartbeat_at.eq(bind::opt_ts(None)),
                ),
            )?;
        if outcome.applied() {
            return Ok(());
        }
    }
}
