//! Runner claims: taking one (`claim_for_runner`), keeping it alive
//! (`heartbeat`) and giving it up (`release_runner_claim`). Each is a
//! compare-and-set on `claimed_by` and `status` in the `WHERE` clause.

use diesel::prelude::*;
use te_core::schema::task_executions::dsl as t;
use te_core::{
    AnyConnection, DalError, EventType, HeartbeatResult, NewEvent, RunnerClaimResult,
    TaskExecutionDal, TaskStatus, bind,
};
use uuid::Uuid;

/// The statuses a runner claim is meaningful in.
pub(crate) const CLAIMABLE: [TaskStatus; 2] = [TaskStatus::Ready, TaskStatus::Running];

/// The status of `task_id`, or `None` if there is no such task.
fn status_of(conn: &mut AnyConnection, task_id: Uuid) -> Result<Option<TaskStatus>, DalError> {
    Ok(t::task_executions
        .find(bind::id(task_id))
        .select(t::status)
        .first::<TaskStatus>(conn)
        .optional()?)
}

pub(crate) async fn claim_for_runner(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    runner_id: Uuid,
) -> Result<RunnerClaimResult, DalError> {
    dal.write(move |conn| {
        let now = te_core::now();
        let pipeline_id = diesel::update(
            t::task_executions
                .filter(t::id.eq(bind::id(task_id)))
                .filter(t::status.eq_any(CLAIMABLE))
                .filter(
                    t::claimed_by
                        .is_null()
                        .or(t::claimed_by.eq(bind::opt_id(Some(runner_id)))),
                ),
        )
        .set((
            t::claimed_by.eq(bind::opt_id(Some(runner_id))),
            t::heartbeat_at.eq(bind::opt_ts(Some(now))),
            t::updated_at.eq(bind::ts(now)),
        ))
        .returning(t::pipeline_execution_id)
        .get_result::<Uuid>(conn)
        .optional()?;
        match pipeline_id {
            Some(pipeline_id) => {
                te_core::record_event(
                    conn,
                    NewEvent::task(pipeline_id, task_id, EventType::RunnerClaimed, now)
                        .runner(Some(runner_id)),
                )?;
                Ok(RunnerClaimResult::Claimed)
            }
            None => match status_of(conn, task_id)? {
                Some(_) => Ok(RunnerClaimResult::AlreadyClaimed),
                None => Err(DalError::not_found("task execution", task_id)),
            },
        }
    })
    .await
}

pub(crate) async fn heartbeat(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    runner_id: Uuid,
) -> Result<HeartbeatResult, DalError> {
    dal.write(move |conn| {
        let now = te_core::now();
        let changed = diesel::update(
            t::task_executions
                .filter(t::id.eq(bind::id(task_id)))
                .filter(t::claimed_by.eq(bind::opt_id(Some(runner_id))))
                .filter(t::status.eq_any(CLAIMABLE)),
        )
        .set(t::heartbeat_at.eq(bind::opt_ts(Some(now))))
        .execute(conn)?;
        if changed == 1 {
            return Ok(HeartbeatResult::Ok);
        }
        match status_of(conn, task_id)? {
            Some(_) => Ok(HeartbeatResult::ClaimLost),
            None => Err(DalError::not_found("task execution", task_id)),
        }
    })
    .await
}

pub(crate) async fn release(dal: &TaskExecutionDal, task_id: Uuid) -> Result<(), DalError> {
    dal.write(move |conn| {
        let now = te_core::now();
        // Read the holder, then clear the claim only if it is still that
        // holder's: the event names the runner whose claim was released. A
        // concurrent change of holder makes the update match nothing; read again.
        loop {
            let (pipeline_id, holder) = t::task_executions
                .find(bind::id(task_id))
                .select((t::pipeline_execution_id, t::claimed_by))
                .first::<(Uuid, Option<Uuid>)>(conn)
                .optional()?
                .ok_or_else(|| DalError::not_found("task execution", task_id))?;
            let Some(holder) = holder else {
                return Ok(());
            };
            let changed = diesel::update(
                t::task_executions
                    .filter(t::id.eq(bind::id(task_id)))
                    .filter(t::claimed_by.eq(bind::opt_id(Some(holder)))),
            )
            .set((
                t::claimed_by.eq(bind::opt_id(None)),
                t::heartbeat_at.eq(bind::opt_ts(None)),
                t::updated_at.eq(bind::ts(now)),
            ))
            .execute(conn)?;
            if changed == 1 {
                te_core::record_event(
                    conn,
                    NewEvent::task(pipeline_id, task_id, EventType::ClaimReleased, now)
                        .runner(Some(holder)),
                )?;
                return Ok(());
            }
        }
    })
    .await
}
