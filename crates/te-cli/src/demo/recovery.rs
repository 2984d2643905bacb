//! Stale-claim recovery: one pass (shared with `te recover`) that resets each
//! task whose runner went silent, or abandons it once it was recovered too
//! often; and the demo's loop that runs such a pass several times a second.

use std::sync::Arc;
use std::time::Duration;

use task_execution_dal::prelude::*;

use super::monitor::bump;
use super::shared::Shared;
use crate::error::CliError;

/// What one recovery pass did.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// Claims whose task was made `Ready` again.
    pub(crate) reset: Vec<StaleClaim>,
    /// Claims whose task was abandoned (`Failed`, `ABANDONED: …`).
    pub(crate) abandoned: Vec<StaleClaim>,
    /// Claims whose task changed before it could be recovered (nothing done).
    pub(crate) moved_on: Vec<StaleClaim>,
}

/// One pass of recovery over the stale claims `include` accepts: a task
/// recovered fewer than `max_recoveries` times is reset, any other abandoned.
pub(crate) async fn recover_once(
    dal: &TaskExecutionDal,
    stale_after: Duration,
    max_recoveries: i32,
    include: impl Fn(&StaleClaim) -> bool,
) -> Result<Pass, DalError> {
    let mut pass = Pass::default();
    for claim in dal.find_stale_claims(stale_after).await? {
        if !include(&claim) {
            continue;
        }
        let abandon = claim.recovery_attempts >= max_recoveries;
        let result = if abandon {
            let reason = format!(
                "runner {} went silent; the task was already recovered {} times",
                claim.claimed_by, claim.recovery_attempts
            );
            dal.mark_abandoned(claim.task_id, &reason).await
        } else {
            dal.reset_task_for_recovery(claim.task_id).await
        };
        match result {
            Ok(()) if abandon => pass.abandoned.push(claim),
            Ok(()) => pass.reset.push(claim),
            Err(DalError::IllegalTransition { .. }) => pass.moved_on.push(claim),
            Err(err) if err.is_not_found() => pass.moved_on.push(claim),
            Err(err) => return Err(err),
        }
    }
    Ok(pass)
}

/// Recovers the demo's stale claims until the demo stops.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<(), CliError> {
    let every = (shared.settings.stale_after / 5).max(Duration::from_millis(10));
    while !shared.stopping() {
        tokio::time::sleep(every).await;
        let pass = recover_once(
            &shared.dal,
            shared.settings.stale_after,
            shared.settings.max_recoveries,
            |claim| shared.tasks.contains_key(&claim.task_id),
        )
        .await?;
        for claim in &pass.reset {
            bump(&shared.monitor.counters.recoveries);
            shared.touch(shared.tasks[&claim.task_id]);
        }
        for claim in &pass.abandoned {
            bump(&shared.monitor.counters.abandoned);
            shared.touch(shared.tasks[&claim.task_id]);
        }
        shared.wake_workers_for(pass.reset.len());
    }
    Ok(())
}
