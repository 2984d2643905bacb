//! One pass of stale-claim recovery: each task whose runner went silent is
//! reset, or abandoned once it was recovered too often. `te recover` runs one
//! pass; the demo's recovery loop runs one several times a second.

use std::time::Duration;

use task_execution_dal::prelude::*;

/// When a claim is stale, and when its task is abandoned instead of reset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// A claim whose heartbeat is older than this is stale.
    pub(crate) stale_after: Duration,
    /// A stale task already recovered this many times is abandoned.
    pub(crate) max_recoveries: i32,
}

/// What one recovery pass did.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// Claims whose task was made `Ready` again (or `Skipped`, when its
    /// pipeline execution was cancelled).
    pub(crate) reset: Vec<StaleClaim>,
    /// Claims whose task was abandoned (`Failed`, `ABANDONED: …`).
    pub(crate) abandoned: Vec<StaleClaim>,
    /// Claims whose task changed before it could be recovered (nothing done).
    pub(crate) moved_on: Vec<StaleClaim>,
}

/// One pass of recovery over the stale claims `include` accepts: a task
/// recovered fewer than `policy.max_recoveries` times is reset, any other
/// abandoned.
pub(crate) async fn recover_once(
    dal: &TaskExecutionDal,
    policy: Policy,
    include: impl Fn(&StaleClaim) -> bool,
) -> Result<Pass, DalError> {
    let mut pass = Pass::default();
    for claim in dal.find_stale_claims(policy.stale_after).await? {
        if !include(&claim) {
            continue;
        }
        let abandon = claim.recovery_attempts >= policy.max_recoveries;
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
