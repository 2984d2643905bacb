//! Concurrent per-task calls on one handle that run together: on PostgreSQL
//! claims and completions queued behind a running one go in one statement
//! (coalescing), on SQLite in one transaction (group commit). Either way
//! each caller gets its own answer (a refusal, a fenced runner, an unknown
//! task among them changes nothing for the others), no task is claimed
//! twice, and a claim whose caller stopped waiting gives its tasks back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::task_executions;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    Lock, LockHolder, count_events, events, handle_with_pool, ready_pipeline, task_in,
    task_statuses, until_waiting,
};
use crate::group_commit::count_commits;

/// Every task's `started_at` and `completed_at`, by id.
async fn times(
    dal: &TaskExecutionDal,
) -> HashMap<Uuid, (Option<DateTime<Utc>>, Option<DateTime<Utc>>)> {
    dal.run(|conn| {
        Ok(task_executions::table
            .select((
                task_executions::id,
                task_executions::started_at,
                task_executions::completed_at,
            ))
            .load::<(Uuid, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(conn)?
            .into_iter()
            .map(|(id, started, completed)| (id, (started, completed)))
            .collect())
    })
    .await
    .unwrap()
}

/// A caller claiming one task, in a task of its own.
fn claim_one(
    dal: &TaskExecutionDal,
) -> tokio::task::JoinHandle<Result<Vec<ClaimResult>, DalError>> {
    let dal = dal.clone();
    tokio::spawn(async move { dal.claim_ready_task(1).await })
}

/// `n` ready tasks and a first claim of one, blocked: another connection
/// holds the lock claims wait for (on PostgreSQL the table a claim reads,
/// `held_pipelines`), and the claim has reached it; the calls made next
/// queue behind it. Returns the tasks, the lock (to release) and the claim.
async fn blocked_claim(
    db: &TestDb,
    n: usize,
) -> (
    Vec<TaskExecution>,
    LockHolder,
    tokio::task::JoinHandle<Result<Vec<ClaimResult>, DalError>>,
) {
    let (_, tasks) = ready_pipeline(db.dal(), n).await;
    let lock = LockHolder::take(db, Lock::Table("held_pipelines"));
    let first = claim_one(db.dal());
    until_waiting(db, 1, || false).await;
    (tasks, lock, first)
}

/// Lets spawned calls reach their queue (they wait there without touching
/// the database).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The tasks both tests of queued completions start from, in one new
/// pipeline: its id, and `[blocker, plain, held, fenced, never_ran]`, the
/// first four `Running` (`held` and `fenced` claimed by `runner`; the
/// others queue behind the blocker's completion), `never_ran` `Ready`.
async fn cast(dal: &TaskExecutionDal, runner: Uuid) -> (Uuid, [Uuid; 5]) {
    let pipeline_id = crate::common::pipeline(dal).await.id;
    let mut ids = [Uuid::nil(); 5];
    let names = ["blocker", "plain", "held", "fenced", "never-ran"];
    for (id, name) in ids.iter_mut().zip(names) {
        let status = if name == "never-ran" {
            TaskStatus::Ready
        } else {
            TaskStatus::Running
        };
        *id = task_in(dal, pipeline_id, name, status).await.id;
    }
    for task in [ids[2], ids[3]] {
        let claim = dal.claim_for_runner(task, runner).await.unwrap();
        assert_eq!(claim, RunnerClaimResult::Claimed);
    }
    (pipeline_id, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_queued_together_each_get_their_own_answer() {
    let db = TestDb::new().await;
    let dal = db.dal().clone();
    let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
    let (pipeline_id, [blocker, plain, held, fenced, never_ran]) = cast(&dal, r1).await;
    let running = |name: &'static str| task_in(&dal, pipeline_id, name, TaskStatus::Running);
    let failing = running("failing").await.id;
    let twice = running("twice").await.id;
    let fail_ready = task_in(&dal, pipeline_id, "fail-ready", TaskStatus::Ready)
        .await
        .id;
    let done = running("done").await.id;
    assert!(dal.mark_completed(done, None).await.unwrap());
    let unknown = Uuid::now_v7();
    let events_before = count_events(&dal, None).await;

    // The first completion waits for the blocker's row (PostgreSQL) or the
    // write lock (SQLite); every other call queues behind it meanwhile.
    let holder = LockHolder::take(&db, Lock::Row(blocker));
    let first = {
        let dal = dal.clone();
        tokio::spawn(async move { dal.mark_completed(blocker, None).await })
    };
    until_waiting(&db, 1, || false).await;
    type Call = tokio::task::JoinHandle<Result<bool, DalError>>;
    let complete = |task: Uuid, runner: Option<Uuid>| -> Call {
        let dal = dal.clone();
        tokio::spawn(async move { dal.mark_completed(task, runner).await })
    };
    let fail = |task: Uuid, error: &'static str| -> Call {
        let dal = dal.clone();
        tokio::spawn(async move { dal.mark_failed(task, error, None).await })
    };
    let calls = vec![
        ("plain", complete(plain, None)),
        ("held", complete(held, Some(r1))),
        ("fenced", complete(fenced, Some(r2))),
        ("failing", fail(failing, "boom")),
        ("twice-1", complete(twice, None)),
        ("twice-2", complete(twice, None)),
        ("never-ran", complete(never_ran, None)),
        ("fail-ready", fail(fail_ready, "upstream gone")),
        ("done", complete(done, None)),
        ("unknown", complete(unknown, None)),
    ];
    settle().await;
    holder.release();
    assert!(
        first.await.unwrap().unwrap(),
        "the blocked completion applies"
    );
    let mut answers = HashMap::new();
    for (name, call) in calls {
        answers.insert(name, call.await.unwrap());
    }

    for name in ["plain", "held", "failing", "fail-ready"] {
        assert!(
            matches!(answers[name], Ok(true)),
            "{name}: {:?}",
            answers[name]
        );
    }
    assert!(
        matches!(answers["fenced"], Ok(false)),
        "a runner without the claim is fenced: {:?}",
        answers["fenced"]
    );
    let twice_answers = [&answers["twice-1"], &answers["twice-2"]];
    assert_eq!(
        twice_answers
            .iter()
            .filter(|a| matches!(a, Ok(true)))
            .count(),
        1,
        "one of two completions of one task applies: {twice_answers:?}"
    );
    assert!(
        twice_answers
            .iter()
            .any(|a| matches!(a, Err(DalError::IllegalTransition { .. }))),
        "the other is refused: {twice_answers:?}"
    );
    for name in ["never-ran", "done"] {
        assert!(
            matches!(answers[name], Err(DalError::IllegalTransition { .. })),
            "{name}: {:?}",
            answers[name]
        );
    }
    assert!(
        matches!(&answers["unknown"], Err(e) if e.is_not_found()),
        "{:?}",
        answers["unknown"]
    );

    let statuses = task_statuses(&dal).await;
    for task in [blocker, plain, held, twice, done] {
        assert_eq!(statuses[&task], TaskStatus::Completed);
    }
    for task in [failing, fail_ready] {
        assert_eq!(statuses[&task], TaskStatus::Failed);
    }
    assert_eq!(
        statuses[&fenced],
        TaskStatus::Running,
        "the fenced task runs on"
    );
    assert_eq!(statuses[&never_ran], TaskStatus::Ready);
    // One event per applied call (blocker, plain, held, failing, twice,
    // fail-ready), none for a refused one.
    assert_eq!(count_events(&dal, None).await - events_before, 6);
    let completed = events(&dal, Some(held), Some(EventType::TaskCompleted)).await;
    assert_eq!(completed.len(), 1);
    assert_eq!(
        completed[0].runner_id,
        Some(r1),
        "the event names the runner"
    );
    let failed = events(&dal, Some(failing), Some(EventType::TaskFailed)).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].event_data,
        Some(serde_json::json!({ "error": "boom" }))
    );
    let failing_row = dal.get_by_id(failing).await.unwrap();
    assert_eq!(failing_row.last_error.as_deref(), Some("boom"));
    assert_eq!(failing_row.claimed_by, None);

    if dal.backend() == Backend::Postgres {
        // The queued calls went in one statement: one `now` for all.
        let times = times(&dal).await;
        let stamps: HashSet<_> = [plain, held, failing, fail_ready]
            .iter()
            .map(|task| times[task].1)
            .collect();
        assert_eq!(
            stamps.len(),
            1,
            "one batch, one completion time: {stamps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_claims_take_each_task_once() {
    let db = TestDb::new().await;
    let dal = db.dal().clone();
    let (_, tasks) = ready_pipeline(&dal, 300).await;
    let runner = Uuid::now_v7();
    let workers: Vec<_> = (0..48)
        .map(|w| {
            let dal = dal.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = if w % 4 == 0 {
                        dal.claim_ready_tasks_for_runner(runner, 1).await.unwrap()
                    } else {
                        dal.claim_ready_task(1 + w % 3).await.unwrap()
                    };
                    assert!(claimed.len() <= 1 + w % 3);
                    if claimed.is_empty() {
                        return mine;
                    }
                    for task in claimed {
                        let by = (w % 4 == 0).then_some(runner);
                        assert!(dal.mark_completed(task.id, by).await.unwrap());
                        mine.push(task.id);
                    }
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id), "task {id} was claimed twice");
        }
    }
    assert_eq!(seen.len(), tasks.len(), "every task was claimed");
    let statuses = task_statuses(&dal).await;
    assert!(statuses.values().all(|s| *s == TaskStatus::Completed));
    for event in [EventType::TaskClaimed, EventType::TaskCompleted] {
        let written = events(&dal, None, Some(event)).await.len();
        assert_eq!(written, tasks.len(), "one {event:?} event per task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_queued_together_are_shared_out_one_per_caller() {
    let db = TestDb::new().await;
    let dal = db.dal().clone();
    let (tasks, lock, first) = blocked_claim(&db, 12).await;
    let plain: Vec<_> = (0..6).map(|_| claim_one(&dal)).collect();
    let runner = Uuid::now_v7();
    let for_runner: Vec<_> = (0..3)
        .map(|_| {
            let dal = dal.clone();
            tokio::spawn(async move { dal.claim_ready_tasks_for_runner(runner, 1).await })
        })
        .collect();
    settle().await;
    lock.release();

    let first = first.await.unwrap().unwrap();
    assert_eq!(first.len(), 1);
    let mut plain_ids = Vec::new();
    for call in plain {
        let claimed = call.await.unwrap().unwrap();
        assert_eq!(claimed.len(), 1, "each caller gets one task");
        plain_ids.push(claimed[0].id);
    }
    let mut runner_ids = Vec::new();
    for call in for_runner {
        let claimed = call.await.unwrap().unwrap();
        assert_eq!(claimed.len(), 1, "each runner caller gets one task");
        runner_ids.push(claimed[0].id);
    }
    let all: HashSet<Uuid> = first
        .iter()
        .map(|c| c.id)
        .chain(plain_ids.iter().copied())
        .chain(runner_ids.iter().copied())
        .collect();
    assert_eq!(all.len(), 10, "ten callers, ten distinct tasks");
    for id in &runner_ids {
        assert_eq!(dal.get_by_id(*id).await.unwrap().claimed_by, Some(runner));
    }
    for id in &plain_ids {
        assert_eq!(dal.get_by_id(*id).await.unwrap().claimed_by, None);
    }
    let statuses = task_statuses(&dal).await;
    let ready = tasks
        .iter()
        .filter(|t| statuses[&t.id] == TaskStatus::Ready)
        .count();
    assert_eq!(ready, 2, "twelve tasks, ten claimed");

    if dal.backend() == Backend::Postgres {
        // The six plain callers queued behind the first went in one claim
        // (one `started_at`), the runner's in another.
        let times = times(&dal).await;
        let plain_stamps: HashSet<_> = plain_ids.iter().map(|id| times[id].0).collect();
        assert_eq!(plain_stamps.len(), 1, "{plain_stamps:?}");
        let runner_stamps: HashSet<_> = runner_ids.iter().map(|id| times[id].0).collect();
        assert_eq!(runner_stamps.len(), 1, "{runner_stamps:?}");
    }
}

/// Waits (at most ten seconds) until exactly `running` tasks are `Running`;
/// returns how many are.
async fn until_running(dal: &TaskExecutionDal, running: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = task_statuses(dal)
            .await
            .values()
            .filter(|s| **s == TaskStatus::Running)
            .count();
        if now == running || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_caller_is_dropped_mid_batch_gives_its_task_back() {
    let db = TestDb::new().await;
    let dal = db.dal().clone();

    // PostgreSQL: the first claim waits for `first_lock`; a second lock
    // queues behind it, so that the batch of the callers queued meanwhile
    // is taken, sent, and then waits for the second lock, in flight. SQLite:
    // every caller queues behind one write lock.
    let (tasks, first_lock, first) = blocked_claim(&db, 20).await;
    let postgres = dal.backend() == Backend::Postgres;
    let second_lock = postgres.then(|| LockHolder::ask(&db, Lock::Table("held_pipelines")));
    until_waiting(&db, 2, || false).await;
    let mut callers: Vec<_> = (0..10).map(|_| claim_one(&dal)).collect();
    let kept = callers.split_off(4);
    settle().await;
    if !postgres {
        // SQLite: four callers stop waiting while queued; they are left out.
        callers.iter().for_each(tokio::task::JoinHandle::abort);
    }
    first_lock.release();
    if let Some(second) = &second_lock {
        second.held();
        // The batch of the ten callers was taken and waits for the second
        // lock: four of them stop waiting while it is in flight.
        until_waiting(&db, 1, || false).await;
        callers.iter().for_each(tokio::task::JoinHandle::abort);
    }
    if let Some(second) = second_lock {
        second.release();
    }
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.len(), 1);
    let mut answered: HashSet<Uuid> = first.iter().map(|c| c.id).collect();
    for caller in kept {
        let claimed = caller.await.unwrap().unwrap();
        assert_eq!(claimed.len(), 1, "each waiting caller gets a task");
        assert!(answered.insert(claimed[0].id), "no task handed out twice");
    }
    // What the dropped callers claimed goes back to `Ready`: only the
    // answered tasks stay `Running`.
    assert_eq!(until_running(&dal, answered.len()).await, answered.len());
    let statuses = task_statuses(&dal).await;
    for (id, status) in &statuses {
        assert_eq!(
            *status == TaskStatus::Running,
            answered.contains(id),
            "task {id} is {status:?}"
        );
    }
    let given_back = events(&dal, None, Some(EventType::RecoveryReset)).await;
    if postgres {
        assert_eq!(given_back.len(), 4, "the four dropped callers' tasks");
    }
    for event in &given_back {
        assert!(
            event
                .event_data
                .as_ref()
                .and_then(|d| d.get("reason"))
                .is_some(),
            "a given-back task says why"
        );
    }
    // Nothing is lost: the rest is claimed, each task once overall.
    let rest = crate::common::claim_until_empty(&dal, None, 5).await;
    for id in rest {
        assert!(answered.insert(id), "task {id} claimed twice");
    }
    assert_eq!(answered.len(), tasks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_dropped_at_any_moment_lose_no_task() {
    let db = TestDb::new().await;
    let dal = db.dal().clone();
    let (_, tasks) = ready_pipeline(&dal, 60).await;
    let callers: Vec<_> = (0..120u64)
        .map(|i| {
            let dal = dal.clone();
            tokio::spawn(async move {
                // Some callers stop waiting after a moment, wherever their
                // claim is by then.
                let wait = Duration::from_micros((i * 397) % 3000);
                if i % 2 == 0 {
                    tokio::time::timeout(wait, dal.claim_ready_task(1))
                        .await
                        .ok()
                        .map(Result::unwrap)
                } else {
                    Some(dal.claim_ready_task(1).await.unwrap())
                }
            })
        })
        .collect();
    let mut answered = HashSet::new();
    for caller in callers {
        for task in caller.await.unwrap().unwrap_or_default() {
            assert!(answered.insert(task.id), "task {} claimed twice", task.id);
        }
    }
    assert_eq!(until_running(&dal, answered.len()).await, answered.len());
    let rest = crate::common::claim_until_empty(&dal, None, 7).await;
    for id in rest {
        assert!(answered.insert(id), "task {id} claimed twice");
    }
    assert_eq!(answered.len(), tasks.len(), "every task claimed, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_with_context_queued_together_each_get_their_own_answer() {
    let db = TestDb::new().await;
    // One pooled connection: every write below commits on it.
    let dal = handle_with_pool(&db, 1).await;
    let runner = Uuid::now_v7();
    let (pipeline_id, [blocker, plain, held, fenced, never_ran]) = cast(&dal, runner).await;
    let dependent = task_in(&dal, pipeline_id, "dependent", TaskStatus::NotStarted)
        .await
        .id;

    let commits = count_commits(&dal).await;
    let holder = LockHolder::take(&db, Lock::Row(blocker));
    let call = |task: Uuid, by: Option<Uuid>, dependents: Vec<Uuid>| {
        let dal = dal.clone();
        tokio::spawn(async move {
            let output = serde_json::json!({ "task": task.to_string() });
            dal.complete_and_promote(task, by, &output, dependents)
                .await
        })
    };
    let first = call(blocker, None, Vec::new());
    until_waiting(&db, 1, || false).await;
    let plain_call = call(plain, None, vec![dependent]);
    let held_call = call(held, Some(runner), Vec::new());
    let fenced_call = call(fenced, Some(Uuid::now_v7()), Vec::new());
    let never_ran_call = call(never_ran, None, Vec::new());
    settle().await;
    holder.release();

    assert_eq!(first.await.unwrap().unwrap(), Some(0));
    assert_eq!(
        plain_call.await.unwrap().unwrap(),
        Some(1),
        "one dependent promoted"
    );
    assert_eq!(held_call.await.unwrap().unwrap(), Some(0));
    assert_eq!(fenced_call.await.unwrap().unwrap(), None, "fenced");
    let refused = never_ran_call.await.unwrap();
    assert!(
        matches!(refused, Err(DalError::IllegalTransition { .. })),
        "{refused:?}"
    );

    let statuses = task_statuses(&dal).await;
    for task in [blocker, plain, held] {
        assert_eq!(statuses[&task], TaskStatus::Completed);
        assert_eq!(
            dal.load_task_context(task).await.unwrap(),
            Some(serde_json::json!({ "task": task.to_string() })),
            "the completed task's output is saved"
        );
    }
    assert_eq!(statuses[&dependent], TaskStatus::Ready);
    assert_eq!(statuses[&fenced], TaskStatus::Running);
    assert_eq!(statuses[&never_ran], TaskStatus::Ready);
    for task in [fenced, never_ran] {
        assert_eq!(dal.load_task_context(task).await.unwrap(), None);
        assert!(
            events(&dal, Some(task), Some(EventType::ContextSaved))
                .await
                .is_empty(),
            "a refused call saves nothing"
        );
    }
    if dal.backend() == Backend::Postgres {
        // The first call, then the four queued behind it in one
        // transaction.
        assert_eq!(commits.load(Ordering::SeqCst), 2);
    }
}
