//! te-claiming on the backend `TE_TEST_BACKEND` selects: batch claims (order,
//! `retry_at`, limits, events, sixteen concurrent claimers), runner claims,
//! heartbeats, release, stale claims and retry scheduling.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde_json::json;
use te_core::schema::task_executions;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    assert_empty, assert_invalid, assert_not_found, claim_until_empty, count_events, create_ready,
    db_with_pipeline, events, handle_with_pool, ids, ready_pipeline,
};

// --- helpers ---------------------------------------------------------------

/// A task row in `status`, created at `created_at`, to insert directly.
fn row(pid: Uuid, name: &str, status: TaskStatus, created_at: DateTime<Utc>) -> TaskExecution {
    NewTaskExecution::new(pid, name)
        .status(status)
        .into_row(created_at)
}

/// Inserts one row and returns it.
async fn insert_one(db: &TestDb, row: TaskExecution) -> TaskExecution {
    db.insert_tasks(vec![row.clone()]).await;
    row
}

async fn all_tasks(dal: &TaskExecutionDal) -> Vec<TaskExecution> {
    dal.run(|conn| {
        Ok(task_executions::table
            .order((task_executions::created_at, task_executions::id))
            .select(TaskExecution::as_select())
            .load(conn)?)
    })
    .await
    .unwrap()
}

// --- batch claims ----------------------------------------------------------

#[tokio::test]
async fn claims_move_ready_tasks_to_running_oldest_first() {
    let (db, pid) = db_with_pipeline().await;
    let base = te_core::toolkit::now() - TimeDelta::minutes(5);
    // Ready tasks inserted out of order, one microsecond apart; the oldest
    // has a second attempt.
    let mut ready = Vec::new();
    for offset in [3i64, 1, 4, 0, 2] {
        let mut r = row(
            pid,
            &format!("ready-{offset}"),
            TaskStatus::Ready,
            base + TimeDelta::microseconds(offset),
        );
        if offset == 0 {
            r.attempt = 2;
            r.max_attempts = 3;
        }
        ready.push(r);
    }
    // Never claimable: other statuses, even older.
    let others: Vec<TaskExecution> = [
        TaskStatus::NotStarted,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Skipped,
    ]
    .into_iter()
    .map(|s| row(pid, s.as_str(), s, base - TimeDelta::seconds(1)))
    .collect();
    db.insert_tasks(ready.clone()).await;
    db.insert_tasks(others.clone()).await;
    let mut by_age = ready.clone();
    by_age.sort_by_key(|r| r.created_at);

    let before = te_core::toolkit::now();
    let first = db.claim_ready_task(3).await.unwrap();
    assert_eq!(
        ids(&first),
        by_age[..3].iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_eq!(first[0].attempt, 2);
    assert_eq!(first[0].task_name, "ready-0");
    assert_eq!(first[0].pipeline_execution_id, pid);
    assert_eq!(first[1].attempt, 1);

    for claimed in &first {
        let t = db.get_by_id(claimed.id).await.unwrap();
        assert_eq!(t.status, TaskStatus::Running);
        assert_eq!(t.sub_status, Some(SubStatus::Active));
        let started = t.started_at.expect("started_at set");
        assert!(started >= before);
        assert_eq!(t.updated_at, started);
        assert_eq!(t.claimed_by, None, "a plain claim takes no runner claim");
        assert_eq!(t.heartbeat_at, None);
    }

    let second = db.claim_ready_task(10).await.unwrap();
    assert_eq!(
        ids(&second),
        by_age[3..].iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());

    // The other rows were not touched.
    for other in &others {
        assert_eq!(&db.get_by_id(other.id).await.unwrap(), other);
    }
}

#[tokio::test]
async fn limits_are_validated_and_respected() {
    let db = TestDb::new().await;
    ready_pipeline(&db, 12).await;
    let runner = Uuid::new_v4();

    assert_invalid(db.claim_ready_task(0).await, "limit");
    assert_invalid(db.claim_ready_task(10_001).await, "limit");
    assert_invalid(db.claim_ready_tasks_for_runner(runner, 0).await, "limit");
    assert_invalid(
        db.claim_ready_tasks_for_runner(runner, 10_001).await,
        "limit",
    );
    assert!(
        all_tasks(&db)
            .await
            .iter()
            .all(|t| t.status == TaskStatus::Ready),
        "a refused claim claims nothing"
    );
    let claims = events(&db, None, Some(EventType::TaskClaimed)).await;
    assert!(claims.is_empty(), "{claims:?}");

    assert_eq!(db.claim_ready_task(1).await.unwrap().len(), 1);
    assert_eq!(
        db.claim_ready_tasks_for_runner(runner, 4)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        db.claim_ready_task(10_000).await.unwrap().len(),
        7,
        "the largest limit is accepted"
    );
    let running = all_tasks(&db)
        .await
        .iter()
        .filter(|t| t.status == TaskStatus::Running)
        .count();
    assert_eq!(running, 12);
}

#[tokio::test]
async fn retry_at_in_the_future_is_not_claimable() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let mut past = row(pid, "past", TaskStatus::Ready, now - TimeDelta::seconds(2));
    past.retry_at = Some(now - TimeDelta::seconds(1));
    let mut future = row(
        pid,
        "future",
        TaskStatus::Ready,
        now - TimeDelta::seconds(3),
    );
    future.retry_at = Some(now + TimeDelta::hours(1));
    let never = row(
        pid,
        "no-retry",
        TaskStatus::Ready,
        now - TimeDelta::seconds(1),
    );
    db.insert_tasks(vec![past.clone(), future.clone(), never.clone()])
        .await;

    let claimed = db.claim_ready_task(10).await.unwrap();
    assert_eq!(
        ids(&claimed),
        vec![past.id, never.id],
        "oldest first, the future retry skipped"
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
    let still = db.get_by_id(future.id).await.unwrap();
    assert_eq!(still, future, "the future retry is untouched");
}

#[tokio::test]
async fn each_claim_writes_one_task_claimed_event_per_task() {
    let db = TestDb::new().await;
    let (pid, tasks) = ready_pipeline(&db, 9).await;
    let runner = Uuid::new_v4();

    let plain = db.claim_ready_task(4).await.unwrap();
    let by_runner = db.claim_ready_tasks_for_runner(runner, 3).await.unwrap();
    let claimed_events = events(&db, None, Some(EventType::TaskClaimed)).await;
    assert_eq!(claimed_events.len(), 7);
    let per_task: HashMap<Uuid, Vec<&ExecutionEvent>> =
        claimed_events.iter().fold(HashMap::new(), |mut m, e| {
            m.entry(e.task_execution_id.unwrap()).or_default().push(e);
            m
        });
    assert_eq!(per_task.len(), 7, "one event per claimed task");
    for c in &plain {
        let evs = &per_task[&c.id];
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].runner_id, None);
        assert_eq!(evs[0].pipeline_execution_id, pid);
        assert_eq!(evs[0].event_data, Some(json!({"attempt": 1})));
    }
    for c in &by_runner {
        let evs = &per_task[&c.id];
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].runner_id, Some(runner));
    }
    // The two tasks left unclaimed have no claim event.
    let claimed: HashSet<Uuid> = per_task.keys().copied().collect();
    let unclaimed: Vec<_> = tasks.iter().filter(|t| !claimed.contains(&t.id)).collect();
    assert_eq!(unclaimed.len(), 2);
    for t in unclaimed {
        let claims = events(&db, Some(t.id), Some(EventType::TaskClaimed)).await;
        assert!(claims.is_empty(), "{claims:?}");
    }
}

#[tokio::test]
async fn claims_for_a_runner_set_its_claim_and_heartbeat() {
    let db = TestDb::new().await;
    ready_pipeline(&db, 3).await;
    let runner = Uuid::new_v4();
    let before = te_core::toolkit::now();
    let claimed = db.claim_ready_tasks_for_runner(runner, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        let t = db.get_by_id(c.id).await.unwrap();
        assert_eq!(t.status, TaskStatus::Running);
        assert_eq!(t.claimed_by, Some(runner));
        let heartbeat = t.heartbeat_at.expect("heartbeat set");
        assert!(heartbeat >= before);
        assert_eq!(t.started_at, Some(heartbeat));
        assert_eq!(
            db.heartbeat(c.id, runner).await.unwrap(),
            HeartbeatResult::Ok
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_claimers_claim_each_task_exactly_once() {
    const TASKS: usize = 2_000;
    const CLAIMERS: usize = 16;
    let db = TestDb::new().await;
    ready_pipeline(&db, TASKS).await;
    let dal = handle_with_pool(&db, CLAIMERS).await;

    let workers: Vec<_> = (0..CLAIMERS)
        .map(|worker| {
            let dal = dal.clone();
            tokio::spawn(async move {
                // Half the claimers claim for a runner; batch sizes differ.
                let runner = (worker % 2 == 0).then(Uuid::new_v4);
                let batch = 5 + worker * 3;
                claim_until_empty(&dal, runner, batch)
                    .await
                    .into_iter()
                    .map(move |id| (id, runner))
                    .collect::<Vec<_>>()
            })
        })
        .collect();

    let mut holder: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    let mut total = 0;
    for worker in workers {
        for (id, runner) in worker.await.unwrap() {
            total += 1;
            assert!(
                holder.insert(id, runner).is_none(),
                "task {id} was claimed twice"
            );
        }
    }
    assert_eq!(total, TASKS);
    assert_eq!(holder.len(), TASKS);

    let tasks = all_tasks(&db).await;
    assert_eq!(tasks.len(), TASKS);
    for t in &tasks {
        assert_eq!(
            t.status,
            TaskStatus::Running,
            "task {} left {:?}",
            t.id,
            t.status
        );
        assert_eq!(
            t.claimed_by, holder[&t.id],
            "the runner that got the task holds it"
        );
    }
    let claimed_events = events(&db, None, Some(EventType::TaskClaimed)).await;
    assert_eq!(claimed_events.len(), TASKS);
    let distinct: HashSet<Uuid> = claimed_events
        .iter()
        .map(|e| e.task_execution_id.unwrap())
        .collect();
    assert_eq!(distinct.len(), TASKS);
}

// --- runner claims, heartbeats, release --------------------------------------

#[tokio::test]
async fn claim_for_runner_is_a_compare_and_set() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let running = insert_one(&db, row(pid, "running", TaskStatus::Running, now)).await;
    let (r1, r2) = (Uuid::new_v4(), Uuid::new_v4());

    assert_eq!(
        db.claim_for_runner(running.id, r1).await.unwrap(),
        RunnerClaimResult::Claimed
    );
    let first = db.get_by_id(running.id).await.unwrap();
    assert_eq!(first.claimed_by, Some(r1));
    assert!(first.heartbeat_at.is_some());

    assert_eq!(
        db.claim_for_runner(running.id, r1).await.unwrap(),
        RunnerClaimResult::Claimed,
        "the holder may claim again"
    );
    assert_eq!(
        db.claim_for_runner(running.id, r2).await.unwrap(),
        RunnerClaimResult::AlreadyClaimed
    );
    assert_eq!(db.get_by_id(running.id).await.unwrap().claimed_by, Some(r1));
    let claimed = events(&db, Some(running.id), Some(EventType::RunnerClaimed)).await;
    assert_eq!(
        claimed.len(),
        2,
        "one event per successful claim, none for the refused one"
    );
    assert!(claimed.iter().all(|e| e.runner_id == Some(r1)));

    // Finished or not yet ready tasks cannot be claimed, and nothing is written.
    for status in [
        TaskStatus::NotStarted,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Skipped,
    ] {
        let t = insert_one(&db, row(pid, status.as_str(), status, now)).await;
        assert_eq!(
            db.claim_for_runner(t.id, r1).await.unwrap(),
            RunnerClaimResult::AlreadyClaimed
        );
        assert_eq!(db.get_by_id(t.id).await.unwrap(), t);
        assert_eq!(count_events(&db, Some(t.id)).await, 0);
    }

    assert_not_found(
        db.claim_for_runner(Uuid::new_v4(), r1).await,
        "task execution",
    );
}

#[tokio::test]
async fn a_runner_claim_on_a_ready_task_reserves_it() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let reserved = insert_one(
        &db,
        row(
            pid,
            "reserved",
            TaskStatus::Ready,
            now - TimeDelta::seconds(1),
        ),
    )
    .await;
    let free = insert_one(&db, row(pid, "free", TaskStatus::Ready, now)).await;
    let (r1, r2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(
        db.claim_for_runner(reserved.id, r1).await.unwrap(),
        RunnerClaimResult::Claimed
    );

    assert_eq!(ids(&db.claim_ready_task(10).await.unwrap()), vec![free.id]);
    assert_empty(db.claim_ready_tasks_for_runner(r2, 10).await);
    assert_eq!(
        ids(&db.claim_ready_tasks_for_runner(r1, 10).await.unwrap()),
        vec![reserved.id]
    );
    let t = db.get_by_id(reserved.id).await.unwrap();
    assert_eq!((t.status, t.claimed_by), (TaskStatus::Running, Some(r1)));
}

#[tokio::test]
async fn heartbeats_hold_until_the_claim_is_lost() {
    let (db, pid) = db_with_pipeline().await;
    let old = te_core::toolkit::now() - TimeDelta::minutes(10);
    let (r1, r2) = (Uuid::new_v4(), Uuid::new_v4());
    let mut t = row(pid, "t", TaskStatus::Running, old);
    t.claimed_by = Some(r1);
    t.heartbeat_at = Some(old);
    let t = insert_one(&db, t).await;

    assert_eq!(db.heartbeat(t.id, r1).await.unwrap(), HeartbeatResult::Ok);
    let after = db.get_by_id(t.id).await.unwrap();
    assert!(after.heartbeat_at.unwrap() > old);
    assert_eq!(
        after.updated_at, old,
        "a heartbeat is not a change of the task"
    );
    assert_eq!(
        count_events(&db, Some(t.id)).await,
        0,
        "heartbeats write no events"
    );

    assert_eq!(
        db.heartbeat(t.id, r2).await.unwrap(),
        HeartbeatResult::ClaimLost
    );
    db.release_runner_claim(t.id).await.unwrap();
    assert_eq!(
        db.heartbeat(t.id, r1).await.unwrap(),
        HeartbeatResult::ClaimLost
    );
    assert_eq!(
        db.get_by_id(t.id).await.unwrap().heartbeat_at,
        None,
        "a lost heartbeat writes nothing"
    );

    // A finished task's claim is lost too.
    let mut done = row(pid, "done", TaskStatus::Completed, old);
    done.claimed_by = Some(r1);
    done.heartbeat_at = Some(old);
    let done = insert_one(&db, done).await;
    assert_eq!(
        db.heartbeat(done.id, r1).await.unwrap(),
        HeartbeatResult::ClaimLost
    );
    assert_eq!(db.get_by_id(done.id).await.unwrap(), done);

    assert_not_found(db.heartbeat(Uuid::new_v4(), r1).await, "task execution");
}

#[tokio::test]
async fn release_clears_the_claim_and_names_its_holder() {
    let (db, pid) = db_with_pipeline().await;
    let t = insert_one(
        &db,
        row(pid, "t", TaskStatus::Running, te_core::toolkit::now()),
    )
    .await;
    let runner = Uuid::new_v4();
    assert_eq!(
        db.claim_for_runner(t.id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );

    db.release_runner_claim(t.id).await.unwrap();
    let after = db.get_by_id(t.id).await.unwrap();
    assert_eq!((after.claimed_by, after.heartbeat_at), (None, None));
    assert_eq!(
        after.status,
        TaskStatus::Running,
        "release leaves the status alone"
    );
    let released = events(&db, Some(t.id), Some(EventType::ClaimReleased)).await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].runner_id, Some(runner));

    // Releasing again does nothing; another runner may now claim.
    db.release_runner_claim(t.id).await.unwrap();
    assert_eq!(
        events(&db, Some(t.id), Some(EventType::ClaimReleased))
            .await
            .len(),
        1
    );
    assert_eq!(
        db.claim_for_runner(t.id, Uuid::new_v4()).await.unwrap(),
        RunnerClaimResult::Claimed
    );

    assert_not_found(
        db.release_runner_claim(Uuid::new_v4()).await,
        "task execution",
    );
}

#[tokio::test]
async fn stale_claims_are_unfinished_claimed_tasks_with_old_heartbeats() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let runner = Uuid::new_v4();
    let claimed = |name: &str, status: TaskStatus, heartbeat: DateTime<Utc>| {
        let mut r = row(pid, name, status, now - TimeDelta::hours(2));
        r.claimed_by = Some(runner);
        r.heartbeat_at = Some(heartbeat);
        r
    };
    let mut stale_running = claimed(
        "stale-running",
        TaskStatus::Running,
        now - TimeDelta::minutes(20),
    );
    stale_running.recovery_attempts = 2;
    let stale_ready = claimed(
        "stale-ready",
        TaskStatus::Ready,
        now - TimeDelta::minutes(30),
    );
    let mut rows = vec![stale_running.clone(), stale_ready.clone()];
    // Finished or not started: never stale, however old the heartbeat.
    for status in [
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Skipped,
        TaskStatus::NotStarted,
    ] {
        rows.push(claimed(status.as_str(), status, now - TimeDelta::hours(1)));
    }
    // Unclaimed, with a leftover heartbeat: not a claim.
    let mut unclaimed = row(pid, "unclaimed", TaskStatus::Running, now);
    unclaimed.heartbeat_at = Some(now - TimeDelta::hours(1));
    rows.push(unclaimed);
    db.insert_tasks(rows).await;
    // A fresh claim, taken now by another runner (the stale `Ready` row is
    // reserved for `runner`, so this claim cannot take it).
    let fresh_task = create_ready(&db, pid, 1).await;
    let fresh = db
        .claim_ready_tasks_for_runner(Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!(ids(&fresh), vec![fresh_task[0].id]);

    let stale = db.find_stale_claims(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        stale,
        vec![
            StaleClaim {
                task_id: stale_ready.id,
                claimed_by: runner,
                heartbeat_at: stale_ready.heartbeat_at.unwrap(),
                recovery_attempts: 0,
            },
            StaleClaim {
                task_id: stale_running.id,
                claimed_by: runner,
                heartbeat_at: stale_running.heartbeat_at.unwrap(),
                recovery_attempts: 2,
            },
        ],
        "oldest heartbeat first, fresh and finished claims left out"
    );
    let wider = db
        .find_stale_claims(Duration::from_secs(25 * 60))
        .await
        .unwrap();
    assert_eq!(
        wider.iter().map(|s| s.task_id).collect::<Vec<_>>(),
        vec![stale_ready.id]
    );
    assert_empty(db.find_stale_claims(Duration::from_secs(24 * 3600)).await);

    // A zero threshold: every live claim whose heartbeat is in the past,
    // still never a finished one.
    let stale_now = db.find_stale_claims(Duration::ZERO).await.unwrap();
    assert!(stale_now.len() >= 2);
    let finished: HashSet<Uuid> = all_tasks(&db)
        .await
        .into_iter()
        .filter(|t| t.status.is_terminal() || t.status == TaskStatus::NotStarted)
        .map(|t| t.id)
        .collect();
    assert!(stale_now.iter().all(|s| !finished.contains(&s.task_id)));

    // A threshold reaching before any storable instant finds nothing.
    assert_empty(db.find_stale_claims(Duration::MAX).await);
}

// --- retries -----------------------------------------------------------------

#[tokio::test]
async fn schedule_retry_makes_running_or_failed_tasks_ready_again() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let runner = Uuid::new_v4();
    for status in [TaskStatus::Running, TaskStatus::Failed] {
        let mut t = row(pid, status.as_str(), status, now - TimeDelta::minutes(1));
        t.max_attempts = 3;
        t.sub_status = (status == TaskStatus::Running).then_some(SubStatus::Active);
        t.started_at = Some(now - TimeDelta::seconds(30));
        t.claimed_by = Some(runner);
        t.heartbeat_at = Some(now);
        if status == TaskStatus::Failed {
            t.completed_at = Some(now);
            t.error_details = Some("boom".into());
            t.last_error = Some("boom".into());
        }
        let t = insert_one(&db, t).await;

        let retry_at = now + TimeDelta::minutes(5) + TimeDelta::microseconds(7);
        db.schedule_retry(t.id, retry_at, 2).await.unwrap();
        let after = db.get_by_id(t.id).await.unwrap();
        assert_eq!(after.status, TaskStatus::Ready);
        assert_eq!(after.sub_status, None);
        assert_eq!(after.retry_at, Some(retry_at));
        assert_eq!(after.attempt, 2);
        assert_eq!((after.started_at, after.completed_at), (None, None));
        assert_eq!((after.claimed_by, after.heartbeat_at), (None, None));
        assert_eq!(after.last_error, t.last_error, "the last error is kept");
        assert_eq!(
            after.error_details, None,
            "the failure is no longer current"
        );
        assert!(after.updated_at >= now);

        let scheduled = events(&db, Some(t.id), Some(EventType::RetryScheduled)).await;
        assert_eq!(scheduled.len(), 1);
        assert_eq!(
            scheduled[0].event_data,
            Some(json!({
                "retry_at": retry_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "attempt": 2,
            }))
        );
    }
    // Neither is claimable before its retry_at.
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_retry_in_the_past_is_claimable_at_once() {
    let (db, pid) = db_with_pipeline().await;
    let mut t = row(pid, "t", TaskStatus::Failed, te_core::toolkit::now());
    t.max_attempts = 2;
    let t = insert_one(&db, t).await;
    db.schedule_retry(t.id, te_core::toolkit::now() - TimeDelta::seconds(1), 2)
        .await
        .unwrap();
    let claimed = db.claim_ready_task(5).await.unwrap();
    assert_eq!(ids(&claimed), vec![t.id]);
    assert_eq!(claimed[0].attempt, 2);
}

#[tokio::test]
async fn schedule_retry_refuses_other_statuses_and_bad_attempts_writing_nothing() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let retry_at = now + TimeDelta::minutes(1);
    for status in [
        TaskStatus::NotStarted,
        TaskStatus::Ready,
        TaskStatus::Completed,
        TaskStatus::Skipped,
    ] {
        let mut t = row(pid, status.as_str(), status, now);
        t.max_attempts = 3;
        let t = insert_one(&db, t).await;
        match db.schedule_retry(t.id, retry_at, 2).await {
            Err(DalError::IllegalTransition { task_id, from, to }) => {
                assert_eq!((task_id, from, to), (t.id, status, TaskStatus::Ready));
            }
            other => panic!("retry from {status}: {other:?}"),
        }
        assert_eq!(db.get_by_id(t.id).await.unwrap(), t, "nothing written");
        assert_eq!(count_events(&db, Some(t.id)).await, 0, "no event");
    }

    let mut failed = row(pid, "failed", TaskStatus::Failed, now);
    failed.max_attempts = 3;
    let failed = insert_one(&db, failed).await;
    assert_invalid(
        db.schedule_retry(failed.id, retry_at, 0).await,
        "new_attempt",
    );
    assert_invalid(
        db.schedule_retry(failed.id, retry_at, -1).await,
        "new_attempt",
    );
    assert_invalid(
        db.schedule_retry(failed.id, retry_at, 4).await,
        "new_attempt",
    );
    assert_eq!(db.get_by_id(failed.id).await.unwrap(), failed);
    assert_eq!(count_events(&db, Some(failed.id)).await, 0);
    db.schedule_retry(failed.id, retry_at, 3).await.unwrap();

    assert_not_found(
        db.schedule_retry(Uuid::new_v4(), retry_at, 2).await,
        "task execution",
    );
}

#[tokio::test]
async fn ready_for_retry_lists_due_retries_in_retry_order() {
    let (db, pid) = db_with_pipeline().await;
    let now = te_core::toolkit::now();
    let with_retry = |name: &str, status: TaskStatus, retry_at: Option<DateTime<Utc>>| {
        let mut r = row(pid, name, status, now - TimeDelta::minutes(10));
        r.retry_at = retry_at;
        r
    };
    let due_late = with_retry(
        "due-late",
        TaskStatus::Ready,
        Some(now - TimeDelta::seconds(1)),
    );
    let due_early = with_retry(
        "due-early",
        TaskStatus::Ready,
        Some(now - TimeDelta::minutes(3)),
    );
    db.insert_tasks(vec![
        due_late.clone(),
        due_early.clone(),
        with_retry("future", TaskStatus::Ready, Some(now + TimeDelta::hours(1))),
        with_retry("no-retry", TaskStatus::Ready, None),
        with_retry(
            "running",
            TaskStatus::Running,
            Some(now - TimeDelta::minutes(5)),
        ),
        with_retry(
            "failed",
            TaskStatus::Failed,
            Some(now - TimeDelta::minutes(5)),
        ),
    ])
    .await;
    let due = db.get_ready_for_retry().await.unwrap();
    assert_eq!(due, vec![due_early, due_late]);
}
