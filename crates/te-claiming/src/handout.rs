//! Claimed tasks on their way to their caller, and claims coalesced on
//! PostgreSQL.
//!
//! A claim commits before its caller has the tasks; a caller that stops
//! waiting in between (its future dropped) would leave them `Running` with
//! nobody working on them. So the tasks travel as [`Claimed`]: dropped
//! without being taken, it gives them back, in a write of their own (see
//! [`give_back`]). This holds on both backends, whether the claim ran alone,
//! in SQLite's group commit or in a coalesced batch.
//!
//! On PostgreSQL, concurrent claims of one task on one handle with the same
//! [`ClaimKey`] run as ONE claim statement for as many tasks as callers (see
//! [`te_core::toolkit::coalesce`]); the tasks, in claim order, are shared out in the
//! order the calls arrived, each call getting at most its limit. A lone
//! claim runs at once, alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::task_executions as te;
use te_core::toolkit::coalesce::{Call, Queued, lost_in_batch};
use te_core::toolkit::{Holder, bind, coalesce, event_data, now, requeue_lost, run_coalesced};
use te_core::{AnyConnection, ClaimResult, DalError, TaskExecutionDal, TaskStatus};
use tokio::runtime::Handle;
use uuid::Uuid;

use crate::claim::{Queues, claim_ready};

/// What a given-back task records as the reason of its `RecoveryReset` (or
/// `TaskSkipped`, when its pipeline was cancelled meanwhile) event.
pub(crate) const GIVEN_BACK: &str =
    "the call that claimed it stopped waiting before it was answered";

/// Which claims may run as one statement: the same runner (or none) and
/// the same queues. Any further criterion of a claim belongs here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimKey {
    /// The runner the tasks are claimed for.
    pub(crate) runner: Option<Uuid>,
    /// The queues the tasks are taken from (`None`: every queue).
    pub(crate) queues: Queues,
}

/// Tasks claimed at `claimed_at` for `key`, until their caller takes them.
pub(crate) struct Claimed {
    tasks: Vec<ClaimResult>,
    owner: Option<Owner>,
}

/// How tasks claimed for `key` at a time go back when nobody takes them:
/// a write of the handle, made by the trait's module (`give_back_all` of
/// the crate root), run by the runtime the claim ran on.
pub(crate) type GiveBack = Arc<
    dyn Fn(Vec<Uuid>, ClaimKey, DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Where claimed tasks go back to when nobody takes them.
struct Owner {
    back: GiveBack,
    runtime: Handle,
    key: ClaimKey,
    claimed_at: DateTime<Utc>,
}

impl Claimed {
    /// `tasks` claimed for `key` at `claimed_at`, given back through `back`
    /// on `runtime` if nobody takes them.
    pub(crate) fn new(
        tasks: Vec<ClaimResult>,
        back: GiveBack,
        runtime: Handle,
        key: ClaimKey,
        claimed_at: DateTime<Utc>,
    ) -> Self {
        let owner = Owner {
            back,
            runtime,
            key,
            claimed_at,
        };
        Claimed {
            tasks,
            owner: Some(owner),
        }
    }

    /// The tasks, now the caller's.
    pub(crate) fn take(mut self) -> Vec<ClaimResult> {
        self.owner = None;
        std::mem::take(&mut self.tasks)
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        if self.tasks.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = self.tasks.iter().map(|task| task.id).collect();
        let Owner {
            back,
            runtime,
            key,
            claimed_at,
        } = owner;
        // A runtime shutting down drops the task unrun: the tasks then stay
        // `Running` until recovered, as after a crash.
        drop(runtime.spawn(back(ids, key, claimed_at)));
    }
}

/// Gives back task `task_id` claimed for `runner` at `claimed_at` whose
/// caller never took it: when it is still `Running` under that claim (its
/// `started_at` is the claim's time, its runner the claim's), it becomes
/// `Ready` again as a recovery does (`recovery_attempts + 1`,
/// `last_recovery_at` now, `started_at`, sub-status and claim cleared, event
/// `RecoveryReset` with the reason [`GIVEN_BACK`]), or `Skipped` when its
/// pipeline was cancelled meanwhile. Anything else (the claim never
/// committed, the task moved on) is left alone. Call it in a write
/// transaction: the row is read `FOR UPDATE` on PostgreSQL.
pub(crate) fn give_back(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner: Option<Uuid>,
    claimed_at: DateTime<Utc>,
) -> Result<(), DalError> {
    let query =
        te::table
            .find(bind::id(task_id))
            .select((te::status, te::claimed_by, te::started_at));
    type Row = (TaskStatus, Option<Uuid>, Option<DateTime<Utc>>);
    let row: Option<Row> = match conn {
        AnyConnection::Postgres(pg) => query.for_update().first(pg).optional()?,
        AnyConnection::Sqlite(lite) => query.first(lite).optional()?,
    };
    if row != Some((TaskStatus::Running, runner, Some(claimed_at))) {
        return Ok(());
    }
    let running = &[TaskStatus::Running];
    let holder = Holder::Runner(runner);
    let reason = Some(event_data::reason(GIVEN_BACK));
    requeue_lost(conn, task_id, running, holder, GIVEN_BACK, reason).map(drop)
}

/// One waiting claim (PostgreSQL).
pub(crate) struct ClaimCall {
    key: ClaimKey,
    limit: i64,
    back: GiveBack,
}

/// Claims up to `limit` tasks for `key` through `dal`'s queue of claims
/// (PostgreSQL).
pub(crate) async fn coalesced_claim(
    dal: &TaskExecutionDal,
    key: ClaimKey,
    limit: i64,
    back: GiveBack,
) -> Result<Vec<ClaimResult>, DalError> {
    let call = ClaimCall { key, limit, back };
    coalesce(dal, call).await.map(Claimed::take)
}

/// The most tasks one claim statement takes (the claim's own limit).
const MAX_CLAIM: i64 = 10_000;

impl Call for ClaimCall {
    type Answer = Claimed;

    /// As many callers as a busy process has workers.
    const MAX_BATCH: usize = 64;

    fn fits(batch: &[Queued<Self>], next: &Self) -> bool {
        let total: i64 = batch.iter().map(|queued| queued.call.limit).sum();
        next.key == batch[0].call.key && total + next.limit <= MAX_CLAIM
    }

    async fn run(dal: TaskExecutionDal, batch: Vec<Queued<Self>>) {
        let runtime = Handle::current();
        run_coalesced(&dal, batch, move |conn, batch| {
            claim_batch(conn, batch, &runtime)
        })
        .await;
    }
}

/// Runs one claim for the whole batch and shares its tasks out; when it
/// fails, each call claims alone and gets its own answer. `Err` when the
/// connection was lost.
fn claim_batch(
    conn: &mut AnyConnection,
    batch: Vec<Queued<ClaimCall>>,
    runtime: &Handle,
) -> Result<(), DalError> {
    let key = batch[0].call.key.clone();
    let total: i64 = batch.iter().map(|queued| queued.call.limit).sum();
    let claimed_at = now();
    let claimed = |tasks, back| Claimed::new(tasks, back, runtime.clone(), key.clone(), claimed_at);
    match claim_ready(conn, key.runner, total, &key.queues, claimed_at) {
        Ok(tasks) => {
            let mut tasks = tasks.into_iter();
            for Queued { call, reply } in batch {
                let share: Vec<ClaimResult> = tasks.by_ref().take(limit(call.limit)).collect();
                // A caller gone by now drops its share, which gives it back.
                reply.send(Ok(claimed(share, call.back)));
            }
            Ok(())
        }
        Err(err) if batch.len() == 1 || err.is_connection_lost() => {
            let lost = err.is_connection_lost();
            let mut batch = batch.into_iter();
            if let Some(first) = batch.next() {
                first.reply.send(Err(err));
            }
            for queued in batch {
                queued.reply.send(Err(lost_in_batch()));
            }
            if lost { Err(lost_in_batch()) } else { Ok(()) }
        }
        Err(_) => {
            for Queued { call, reply } in batch {
                let claimed_at = now();
                let result = claim_ready(conn, key.runner, call.limit, &key.queues, claimed_at)
                    .map(|tasks| {
                        Claimed::new(tasks, call.back, runtime.clone(), key.clone(), claimed_at)
                    });
                reply.send(result);
            }
            Ok(())
        }
    }
}

/// A limit as a count (limits are checked positive before they queue).
fn limit(limit: i64) -> usize {
    usize::try_from(limit).unwrap_or(0)
}
