//! The demo's recovery loop: a pass of [`crate::base::recovery::recover_once`]
//! over the demo's own tasks several times a second, until the demo stops.

use std::sync::Arc;

use super::monitor::bump;
use super::shared::Shared;
use crate::base::error::CliError;
use crate::base::recovery::recover_once;

/// Recovers the demo's stale claims until the demo stops.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<(), CliError> {
    let every = shared.settings.recover_every();
    while !shared.stopping() {
        tokio::time::sleep(every).await;
        let pass = recover_once(&shared.dal, shared.settings.recovery, |claim| {
            shared.tasks.contains_key(&claim.task_id)
        })
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
