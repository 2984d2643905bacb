//! `wakeup`: idle workers in `wait_for_ready`, one task made ready at a
//! time: how soon a ready task is claimed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use task_execution_dal::prelude::*;
use tokio::sync::Notify;
use uuid::Uuid;

use super::common::{Claims, Run, join_all, spawn_workers};
use crate::base::error::CliError;
use crate::bench::report::Figures;

/// The longest an idle `wakeup` worker waits in `wait_for_ready` before it
/// claims again.
const WAKEUP_IDLE_WAIT: Duration = Duration::from_secs(1);
/// The pause, once every `wakeup` worker is waiting again, before the next
/// task is made ready.
const WAKEUP_SETTLE: Duration = Duration::from_millis(5);

/// `wakeup`: `workers` idle workers wait in `wait_for_ready`; a producer on
/// the same handle makes `wakeup_tasks` tasks ready one at a time
/// (`mark_ready`), each once the previous one was claimed and every worker
/// is waiting again. The latency runs from just before the producer's
/// `mark_ready` call (so it includes that write's commit) to the moment a
/// worker's claim returned the task.
pub(crate) async fn wakeup(run: &Run<'_>) -> Result<Figures, CliError> {
    let (dal, total) = (run.dal, run.sizes.wakeup_tasks);
    run.bar.set_length(total as u64);
    let pipeline = dal
        .create_pipeline_execution(NewPipelineExecution::new("bench-wakeup"))
        .await?;
    let tasks = dal
        .create_many(
            (0..total)
                .map(|i| {
                    NewTaskExecution::new(pipeline.id, format!("wake-{i:05}"))
                        .status(TaskStatus::NotStarted)
                })
                .collect(),
        )
        .await?;
    let ready_at: Arc<std::sync::Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let claimed_one = Arc::new(Notify::new());
    // Workers waiting now: each task is made ready only when all are idle.
    let idle = Arc::new(AtomicUsize::new(0));
    let workers = run.sizes.workers.max(1);
    let set = spawn_workers(workers, || {
        let (dal, ready_at, done, claimed_one, idle) = (
            dal.clone(),
            ready_at.clone(),
            done.clone(),
            claimed_one.clone(),
            idle.clone(),
        );
        async move {
            let mut claims = Claims::default();
            while done.load(Ordering::Acquire) < total {
                let Some(task) = dal.claim_ready_task(1).await?.pop() else {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let woken = tokio::select! {
                        woken = dal.wait_for_ready(WAKEUP_IDLE_WAIT) => woken.map(|_| ()),
                        () = claimed_one.notified() => Ok(()),
                    };
                    idle.fetch_sub(1, Ordering::AcqRel);
                    woken?;
                    continue;
                };
                let at = Instant::now();
                let made_ready = ready_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&task.id)
                    .copied();
                if let Some(made_ready) = made_ready {
                    claims
                        .latencies
                        .push(at.saturating_duration_since(made_ready));
                }
                claims.ids.push(task.id);
                dal.mark_completed(task.id, None).await?;
                done.fetch_add(1, Ordering::AcqRel);
                claimed_one.notify_waiters();
            }
            Ok(claims)
        }
    });
    for (i, task) in tasks.iter().enumerate() {
        // Every worker back in its wait (then a moment to be in place).
        // (Bounded, so that a worker that failed cannot hang the producer:
        // its error is reported when the workers are joined.)
        let settle_by = Instant::now() + Duration::from_secs(5);
        while idle.load(Ordering::Acquire) < workers && Instant::now() < settle_by {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(WAKEUP_SETTLE).await;
        let finished = claimed_one.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        ready_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.id, Instant::now());
        dal.mark_ready(task.id).await?;
        let claim_by = tokio::time::Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::Acquire) <= i {
            if tokio::time::timeout_at(claim_by, finished.as_mut())
                .await
                .is_err()
            {
                return Err(CliError::Bench(format!(
                    "wakeup: task {} was not claimed within 60 s",
                    task.id
                )));
            }
            finished.set(claimed_one.notified());
            finished.as_mut().enable();
        }
        run.bar.inc(1);
    }
    claimed_one.notify_waiters();
    let mut claims = Claims::merge(join_all(set).await?);
    let mut figures = Figures::default();
    figures
        .add("wakeup_tasks", claims.latencies.len() as f64)
        .latency("wakeup_p50_ms", "wakeup_p99_ms", &mut claims.latencies)
        .add("duplicates", claims.duplicates() as f64);
    Ok(figures)
}
