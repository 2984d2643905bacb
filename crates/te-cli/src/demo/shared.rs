//! `Shared`: what the demo's workers, scheduler and recovery loop share: the
//! DAL, the workload and the ids it was created under, settings, the
//! monitor, and the signals they wake each other with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use task_execution_dal::prelude::*;
use tokio::sync::Notify;
use uuid::Uuid;

use super::monitor::Monitor;
use crate::base::error::CliError;
use crate::base::recovery::Policy;
use crate::base::sync::lock;
use crate::base::workload::{PipelinePlan, TaskPlan, Workload};

/// How the demo runs, beside its workload.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Workers running at once.
    pub(crate) workers: usize,
    /// Tasks a worker claims per call.
    pub(crate) batch: usize,
    /// When a claim is stale, and when a stale task is abandoned.
    pub(crate) recovery: Policy,
    /// The task start on which the first worker dies (`None`: it does not).
    pub(crate) first_worker_dies_on: Option<u64>,
    /// Queues the tasks are spread over, each with its own workers (1: every
    /// task in the default queue, every worker claiming from any queue).
    pub(crate) queues: usize,
    /// Every pipeline's `max_running`, if limited.
    pub(crate) max_running: Option<i32>,
}

impl Settings {
    /// How often a worker heartbeats its claims: five times per
    /// [`Policy::stale_after`], and no more often than every 5 ms.
    pub(crate) fn heartbeat_every(&self) -> Duration {
        (self.recovery.stale_after / 5).max(Duration::from_millis(5))
    }

    /// How often the recovery loop looks for stale claims: five times per
    /// [`Policy::stale_after`], and no more often than every 10 ms.
    pub(crate) fn recover_every(&self) -> Duration {
        (self.recovery.stale_after / 5).max(Duration::from_millis(10))
    }
}

/// How a pipeline execution ended, as the scheduler decided from its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipelineOutcome {
    /// Every task completed.
    Completed,
    /// A task failed for good (its dependents were skipped).
    Failed,
    /// The demo cancelled it mid-run; its running tasks have ended.
    Cancelled,
}

/// What cancelling one pipeline execution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cancellation {
    /// Tasks skipped by the cancel.
    pub(crate) skipped: usize,
    /// Tasks still running when it committed.
    pub(crate) running: usize,
}

/// State shared by every part of one demo run.
pub(crate) struct Shared {
    /// The database.
    pub(crate) dal: TaskExecutionDal,
    /// What was created.
    pub(crate) workload: Workload,
    /// How it runs.
    pub(crate) settings: Settings,
    /// What was observed.
    pub(crate) monitor: Monitor,
    /// Pipeline execution id → its index in the workload.
    pub(crate) pipelines: BTreeMap<Uuid, u32>,
    /// Task execution id → its pipeline execution id, for every task created.
    pub(crate) tasks: HashMap<Uuid, Uuid>,
    /// Wakes the scheduler (a task finished somewhere).
    pub(crate) wake_scheduler: Notify,
    /// Wakes idle workers (tasks became ready).
    pub(crate) wake_workers: Notify,
    dirty: Mutex<BTreeSet<Uuid>>,
    outcomes: Mutex<BTreeMap<Uuid, PipelineOutcome>>,
    cancelled: Mutex<BTreeMap<Uuid, Cancellation>>,
    /// Runner → the queue its worker claims from (`None`: any queue).
    runner_queues: Mutex<HashMap<Uuid, Option<String>>>,
    stop: AtomicBool,
}

impl Shared {
    /// Shared state for a created workload.
    pub(crate) fn new(
        dal: TaskExecutionDal,
        workload: Workload,
        settings: Settings,
        pipelines: BTreeMap<Uuid, u32>,
        tasks: HashMap<Uuid, Uuid>,
    ) -> Self {
        Shared {
            dal,
            workload,
            settings,
            monitor: Monitor::default(),
            pipelines,
            tasks,
            wake_scheduler: Notify::new(),
            wake_workers: Notify::new(),
            dirty: Mutex::new(BTreeSet::new()),
            outcomes: Mutex::new(BTreeMap::new()),
            cancelled: Mutex::new(BTreeMap::new()),
            runner_queues: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        }
    }

    /// Records that `runner`'s worker claims from `queue` (`None`: any).
    pub(crate) fn set_runner_queue(&self, runner: Uuid, queue: Option<String>) {
        lock(&self.runner_queues).insert(runner, queue);
    }

    /// The queue `runner`'s worker claims from (`None`: any, or unknown).
    pub(crate) fn runner_queue(&self, runner: Uuid) -> Option<String> {
        lock(&self.runner_queues).get(&runner).cloned().flatten()
    }

    /// Every runner and the queue its worker claimed from.
    pub(crate) fn runner_queues(&self) -> HashMap<Uuid, Option<String>> {
        lock(&self.runner_queues).clone()
    }

    /// The plan of pipeline execution `pipeline_id`.
    pub(crate) fn pipeline_plan(&self, pipeline_id: Uuid) -> Result<&PipelinePlan, CliError> {
        self.pipelines
            .get(&pipeline_id)
            .map(|index| &self.workload.pipelines[*index as usize])
            .ok_or_else(|| {
                CliError::Demo(format!(
                    "claimed a task of pipeline execution {pipeline_id}, which this demo did not create"
                ))
            })
    }

    /// The plan of task `name` of pipeline execution `pipeline_id`.
    pub(crate) fn task_plan(&self, pipeline_id: Uuid, name: &str) -> Result<&TaskPlan, CliError> {
        self.pipeline_plan(pipeline_id)?.task(name).ok_or_else(|| {
            CliError::Demo(format!(
                "claimed task {name} of pipeline execution {pipeline_id}, which this demo did not create"
            ))
        })
    }

    /// Notes that tasks of `pipeline_id` changed and wakes the scheduler.
    pub(crate) fn touch(&self, pipeline_id: Uuid) {
        lock(&self.dirty).insert(pipeline_id);
        self.wake_scheduler.notify_one();
    }

    /// The pipelines touched since the last call.
    pub(crate) fn take_touched(&self) -> BTreeSet<Uuid> {
        std::mem::take(&mut *lock(&self.dirty))
    }

    /// Wakes up to `tasks` idle workers (as many as tasks became ready: not
    /// all of them, which would only make the others claim nothing).
    pub(crate) fn wake_workers_for(&self, tasks: usize) {
        for _ in 0..tasks.min(self.settings.workers) {
            self.wake_workers.notify_one();
        }
    }

    /// Records how a pipeline execution ended.
    pub(crate) fn set_outcome(&self, pipeline_id: Uuid, outcome: PipelineOutcome) {
        lock(&self.outcomes).insert(pipeline_id, outcome);
    }

    /// How each finished pipeline execution ended.
    pub(crate) fn outcomes(&self) -> BTreeMap<Uuid, PipelineOutcome> {
        lock(&self.outcomes).clone()
    }

    /// Records that the demo cancelled `pipeline_id`, and wakes the scheduler.
    pub(crate) fn set_cancelled(&self, pipeline_id: Uuid, cancellation: Cancellation) {
        lock(&self.cancelled).insert(pipeline_id, cancellation);
        self.touch(pipeline_id);
    }

    /// True when the demo cancelled `pipeline_id`.
    pub(crate) fn is_cancelled(&self, pipeline_id: Uuid) -> bool {
        lock(&self.cancelled).contains_key(&pipeline_id)
    }

    /// Every pipeline execution the demo cancelled, with what the cancel did.
    pub(crate) fn cancelled(&self) -> BTreeMap<Uuid, Cancellation> {
        lock(&self.cancelled).clone()
    }

    /// Asks every loop to stop.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake_workers.notify_waiters();
        self.wake_scheduler.notify_one();
    }

    /// True once [`Shared::stop`] was called.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
