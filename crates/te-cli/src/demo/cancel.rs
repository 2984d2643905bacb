//! `te demo --cancel N`: cancels N pipeline executions mid-run, once work is
//! under way, choosing the oldest ones that have not ended yet (workers take
//! the oldest tasks first, so these are the ones being worked on).

use std::sync::Arc;
use std::time::Duration;

use task_execution_dal::prelude::*;

use super::monitor::get;
use super::shared::{Cancellation, Shared};
use crate::base::error::CliError;

/// The reason stored on every task a demo cancel skips.
pub(crate) const REASON: &str = "pipeline cancelled by te demo";
/// How often the canceller looks whether work is under way.
const POLL: Duration = Duration::from_millis(5);
/// The canceller waits until this share of the tasks has completed (or
/// [`MAX_WAIT`] passed), so that it cancels pipelines mid-run.
const START_SHARE: u64 = 20;
/// The longest wait before cancelling anyway.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Cancels up to `count` pipeline executions that have not ended.
pub(crate) async fn run(shared: Arc<Shared>, count: usize) -> Result<(), CliError> {
    if count == 0 {
        return Ok(());
    }
    let threshold = (shared.tasks.len() as u64 / START_SHARE).max(1);
    let waited = tokio::time::Instant::now();
    while get(&shared.monitor.counters.completed) < threshold
        && waited.elapsed() < MAX_WAIT
        && !shared.stopping()
    {
        tokio::time::sleep(POLL).await;
    }
    let ended = shared.outcomes();
    let mut cancelled = 0;
    // Ids are time-ordered: oldest pipeline first.
    for &pipeline_id in shared.pipelines.keys() {
        if cancelled == count || shared.stopping() {
            break;
        }
        if ended.contains_key(&pipeline_id) {
            continue;
        }
        match shared.dal.cancel_pipeline(pipeline_id, REASON).await {
            Ok(outcome) => {
                shared
                    .monitor
                    .counters
                    .skipped
                    .fetch_add(outcome.skipped as u64, std::sync::atomic::Ordering::Relaxed);
                shared.set_cancelled(
                    pipeline_id,
                    Cancellation {
                        skipped: outcome.skipped,
                        running: outcome.running,
                    },
                );
                cancelled += 1;
            }
            // It finished meanwhile: take another.
            Err(DalError::IllegalPipelineTransition { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
