//! te-state on the backend `TE_TEST_BACKEND` selects: every transition's
//! effect and audit event, the legality table of API.md over every
//! (operation, from-status) pair, runner fencing, batch completion, and
//! refusals that leave the row and the audit log untouched.

use diesel::prelude::*;
use serde_json::json;
use te_core::schema::task_executions;
use te_core::toolkit::bind;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{count_events, db_with_pipeline, events, ready_and_claimed, task_in};

use TaskStatus::{Completed, Failed, NotStarted, Ready, Running, Skipped};

/// A `Running` task of `pipeline_id` named `name` whose claim `runner`
/// holds.
async fn claimed_task_in(
    db: &TestDb,
    pipeline_id: Uuid,
    name: &str,
    runner: Uuid,
) -> TaskExecution {
    let task = task_in(db, pipeline_id, name, Running).await;
    claim(db, task.id, runner).await;
    task
}

/// A fresh database holding one pipeline with a `Running` task named `t`
/// whose claim a new runner holds; returns the database, the task and the runner.
async fn db_with_claimed_task() -> (TestDb, TaskExecution, Uuid) {
    let (db, p) = db_with_pipeline().await;
    let runner = Uuid::new_v4();
    let task = claimed_task_in(&db, p, "t", runner).await;
    (db, task, runner)
}

/// Makes `runner` hold the claim on `task_id` (as te-claiming would).
async fn claim(db: &TestDb, task_id: Uuid, runner: Uuid) {
    let now = te_core::toolkit::now();
    db.write(move |conn| {
        diesel::update(task_executions::table.find(bind::id(task_id)))
            .set((
                task_executions::claimed_by.eq(bind::opt_id(Some(runner))),
                task_executions::heartbeat_at.eq(bind::opt_ts(Some(now))),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
}

/// The last event of `task_id`, asserting that exactly one event was written
/// for it since it had `before` of them.
async fn only_new_event(db: &TestDb, task_id: Uuid, before: usize) -> ExecutionEvent {
    let log = events(db, Some(task_id), None).await;
    assert_eq!(
        log.len(),
        before + 1,
        "exactly one event per transition: {log:?}"
    );
    log.last().unwrap().clone()
}

/// Every operation of `TaskTransitions` with its legal from-statuses, target and event.
#[derive(Debug, Clone, Copy)]
enum Op {
    Ready,
    Started,
    Completed,
    Failed,
    Skipped,
    Abandoned,
    SubStatus,
    ResetRetry,
    ResetRecovery,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Ready,
        Op::Started,
        Op::Completed,
        Op::Failed,
        Op::Skipped,
        Op::Abandoned,
        Op::SubStatus,
        Op::ResetRetry,
        Op::ResetRecovery,
    ];

    /// The legal moves, as API.md's table states them.
    fn legal_from(self) -> &'static [TaskStatus] {
        match self {
            Op::Ready => &[NotStarted, Ready],
            Op::Started => &[Ready, Running],
            Op::Completed => &[Running],
            Op::Failed => &[NotStarted, Ready, Running],
            Op::Skipped => &[NotStarted, Ready],
            Op::Abandoned => &[NotStarted, Ready, Running],
            Op::SubStatus => &[Running],
            Op::ResetRetry => &[NotStarted, Ready, Running, Completed, Failed, Skipped],
            Op::ResetRecovery => &[Running, Ready],
        }
    }

    fn to(self) -> TaskStatus {
        match self {
            Op::Ready | Op::ResetRetry | Op::ResetRecovery => Ready,
            Op::Started | Op::SubStatus => Running,
            Op::Completed => Completed,
            Op::Failed | Op::Abandoned => Failed,
            Op::Skipped => Skipped,
        }
    }

    fn event(self) -> EventType {
        match self {
            Op::Ready => EventType::TaskReady,
            Op::Started => EventType::TaskStarted,
            Op::Completed => EventType::TaskCompleted,
            Op::Failed => EventType::TaskFailed,
            Op::Skipped => EventType::TaskSkipped,
            Op::Abandoned => EventType::TaskAbandoned,
            Op::SubStatus => EventType::SubStatusChanged,
            Op::ResetRetry => EventType::RetryStateReset,
            Op::ResetRecovery => EventType::RecoveryReset,
        }
    }

    async fn apply(self, dal: &TaskExecutionDal, task_id: Uuid) -> Result<(), DalError> {
        match self {
            Op::Ready => dal.mark_ready(task_id).await,
            Op::Started => dal.mark_started(task_id).await,
            Op::Completed => dal
                .mark_completed(task_id, None)
                .await
                .map(|done| assert!(done)),
            Op::Failed => dal
                .mark_failed(task_id, "boom", None)
                .await
                .map(|done| assert!(done)),
            Op::Skipped => dal.mark_skipped(task_id, "not needed").await,
            Op::Abandoned => dal.mark_abandoned(task_id, "runner lost").await,
            Op::SubStatus => dal.set_sub_status(task_id, Some(SubStatus::Deferred)).await,
            Op::ResetRetry => dal.reset_retry_state(task_id).await,
            Op::ResetRecovery => dal.reset_task_for_recovery(task_id).await,
        }
    }
}

#[tokio::test]
async fn every_operation_from_every_status_follows_the_legality_table() {
    let (db, p) = db_with_pipeline().await;
    for op in Op::ALL {
        for &from in TaskStatus::ALL {
            let task = task_in(&db, p, &format!("{op:?}-{from}"), from).await;
            let events_before = count_events(&db, None).await;
            let result = op.apply(&db, task.id).await;
            let after = db.get_by_id(task.id).await.unwrap();
            if op.legal_from().contains(&from) {
                result.unwrap_or_else(|e| panic!("{op:?} from {from}: {e}"));
                assert_eq!(after.status, op.to(), "{op:?} from {from}");
                assert!(after.updated_at >= task.updated_at);
                let event = only_new_event(&db, task.id, 1).await;
                assert_eq!(event.event_type, op.event(), "{op:?} from {from}");
                assert_eq!(event.pipeline_execution_id, p);
                assert_eq!(event.created_at, after.updated_at);
            } else {
                match result {
                    Err(DalError::IllegalTransition {
                        task_id,
                        from: got_from,
                        to,
                    }) => {
                        assert_eq!((task_id, got_from, to), (task.id, from, op.to()), "{op:?}");
                    }
                    other => {
                        panic!("{op:?} from {from}: expected IllegalTransition, got {other:?}")
                    }
                }
                assert_eq!(after, task, "{op:?} from {from} changed the row");
                assert_eq!(
                    count_events(&db, None).await,
                    events_before,
                    "{op:?} from {from} wrote an event"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_operation_on_an_unknown_task_is_not_found() {
    let db = TestDb::new().await;
    let missing = Uuid::new_v4();
    let runner = Some(Uuid::new_v4());
    let is_not_found = |r: Result<(), DalError>| matches!(r, Err(DalError::NotFound { .. }));
    for op in Op::ALL {
        assert!(is_not_found(op.apply(&db, missing).await), "{op:?}");
    }
    assert!(is_not_found(
        db.mark_completed(missing, runner).await.map(drop)
    ));
    assert!(is_not_found(
        db.mark_failed(missing, "x", runner).await.map(drop)
    ));
    assert_eq!(
        db.mark_completed_many(vec![missing], None).await.unwrap(),
        0
    );
    assert_eq!(count_events(&db, None).await, 0);
}

#[tokio::test]
async fn a_task_runs_its_whole_life_with_one_event_per_step_in_order() {
    let (db, p) = db_with_pipeline().await;
    let task = task_in(&db, p, "t", NotStarted).await;
    db.mark_ready(task.id).await.unwrap();
    db.mark_started(task.id).await.unwrap();
    db.set_sub_status(task.id, Some(SubStatus::Active))
        .await
        .unwrap();
    db.set_sub_status(task.id, Some(SubStatus::Deferred))
        .await
        .unwrap();
    assert_eq!(
        db.get_by_id(task.id).await.unwrap().sub_status,
        Some(SubStatus::Deferred)
    );
    db.set_sub_status(task.id, None).await.unwrap();
    assert_eq!(db.get_by_id(task.id).await.unwrap().sub_status, None);
    assert!(db.mark_completed(task.id, None).await.unwrap());

    let log = events(&db, Some(task.id), None).await;
    let types: Vec<EventType> = log.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::TaskCreated,
            EventType::TaskReady,
            EventType::TaskStarted,
            EventType::SubStatusChanged,
            EventType::SubStatusChanged,
            EventType::SubStatusChanged,
            EventType::TaskCompleted,
        ]
    );
    assert!(log.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let sub_statuses: Vec<_> = log[3..6]
        .iter()
        .map(|e| e.event_data.clone().unwrap())
        .collect();
    assert_eq!(
        sub_statuses,
        [
            json!({"sub_status": "Active"}),
            json!({"sub_status": "Deferred"}),
            json!({"sub_status": null})
        ]
    );
}

#[tokio::test]
async fn mark_started_is_idempotent_and_keeps_the_first_start() {
    let (db, p) = db_with_pipeline().await;
    let task = task_in(&db, p, "t", Ready).await;
    db.mark_started(task.id).await.unwrap();
    let first = db.get_by_id(task.id).await.unwrap();
    assert_eq!(first.status, Running);
    let started_at = first.started_at.expect("started_at is set");
    db.mark_started(task.id).await.unwrap();
    let second = db.get_by_id(task.id).await.unwrap();
    assert_eq!(second.status, Running);
    assert_eq!(second.started_at, Some(started_at));
    assert_eq!(
        events(&db, Some(task.id), None).await.len(),
        3,
        "created and two starts"
    );
}

#[tokio::test]
async fn completing_sets_completed_at_and_clears_claim_and_sub_status() {
    let (db, task, runner) = db_with_claimed_task().await;
    db.set_sub_status(task.id, Some(SubStatus::Active))
        .await
        .unwrap();
    assert!(db.mark_completed(task.id, Some(runner)).await.unwrap());
    let done = db.get_by_id(task.id).await.unwrap();
    assert_eq!(done.status, Completed);
    assert_eq!(done.completed_at, Some(done.updated_at));
    assert_eq!(
        (done.claimed_by, done.heartbeat_at, done.sub_status),
        (None, None, None)
    );
    let event = only_new_event(&db, task.id, 2).await;
    assert_eq!(event.event_type, EventType::TaskCompleted);
    assert_eq!(event.runner_id, Some(runner));
}

#[tokio::test]
async fn failing_records_the_error() {
    let (db, task, runner) = db_with_claimed_task().await;
    assert!(
        db.mark_failed(task.id, "disk full ✗", Some(runner))
            .await
            .unwrap()
    );
    let failed = db.get_by_id(task.id).await.unwrap();
    assert_eq!(failed.status, Failed);
    assert_eq!(failed.error_details.as_deref(), Some("disk full ✗"));
    assert_eq!(failed.last_error.as_deref(), Some("disk full ✗"));
    assert_eq!(failed.completed_at, Some(failed.updated_at));
    assert_eq!((failed.claimed_by, failed.heartbeat_at), (None, None));
    let event = only_new_event(&db, task.id, 1).await;
    assert_eq!(event.event_type, EventType::TaskFailed);
    assert_eq!(event.event_data, Some(json!({"error": "disk full ✗"})));
    assert_eq!(event.runner_id, Some(runner));
}

#[tokio::test]
async fn skipping_and_abandoning_record_the_reason() {
    let (db, p) = db_with_pipeline().await;
    let skipped = task_in(&db, p, "skipped", NotStarted).await;
    db.mark_skipped(skipped.id, "branch not taken")
        .await
        .unwrap();
    let row = db.get_by_id(skipped.id).await.unwrap();
    assert_eq!(row.status, Skipped);
    assert_eq!(row.error_details.as_deref(), Some("branch not taken"));
    assert!(row.completed_at.is_some());
    let event = only_new_event(&db, skipped.id, 1).await;
    assert_eq!(
        event.event_data,
        Some(json!({"reason": "branch not taken"}))
    );

    let abandoned = task_in(&db, p, "abandoned", Running).await;
    claim(&db, abandoned.id, Uuid::new_v4()).await;
    db.mark_abandoned(abandoned.id, "too many recoveries")
        .await
        .unwrap();
    let row = db.get_by_id(abandoned.id).await.unwrap();
    assert_eq!(row.status, Failed);
    assert_eq!(
        row.error_details.as_deref(),
        Some("ABANDONED: too many recoveries")
    );
    assert_eq!(row.last_error.as_deref(), Some("too many recoveries"));
    assert_eq!(row.claimed_by, None);
    let event = only_new_event(&db, abandoned.id, 1).await;
    assert_eq!(event.event_type, EventType::TaskAbandoned);
    assert_eq!(
        event.event_data,
        Some(json!({"reason": "too many recoveries"}))
    );
}

#[tokio::test]
async fn reset_retry_state_clears_everything_of_the_last_attempts() {
    let (db, p) = db_with_pipeline().await;
    let mut new = NewTaskExecution::new(p, "t")
        .max_attempts(5)
        .status(Running);
    new.attempt = 3;
    let task = db.create(new).await.unwrap();
    claim(&db, task.id, Uuid::new_v4()).await;
    db.mark_started(task.id).await.unwrap();
    assert!(db.mark_failed(task.id, "boom", None).await.unwrap());
    db.reset_retry_state(task.id).await.unwrap();
    let row = db.get_by_id(task.id).await.unwrap();
    assert_eq!((row.status, row.attempt, row.max_attempts), (Ready, 1, 5));
    assert_eq!(
        (row.started_at, row.completed_at, row.retry_at),
        (None, None, None)
    );
    assert_eq!((row.error_details, row.last_error), (None, None));
    assert_eq!(
        (row.claimed_by, row.heartbeat_at, row.sub_status),
        (None, None, None)
    );
    assert_eq!(
        only_new_event(&db, task.id, 3).await.event_type,
        EventType::RetryStateReset
    );
}

#[tokio::test]
async fn recovery_reset_counts_attempts_and_releases_the_claim() {
    let (db, p) = db_with_pipeline().await;
    let task = task_in(&db, p, "t", Ready).await;
    for round in 1..=2 {
        db.mark_started(task.id).await.unwrap();
        claim(&db, task.id, Uuid::new_v4()).await;
        db.set_sub_status(task.id, Some(SubStatus::Active))
            .await
            .unwrap();
        db.reset_task_for_recovery(task.id).await.unwrap();
        let row = db.get_by_id(task.id).await.unwrap();
        assert_eq!((row.status, row.recovery_attempts), (Ready, round));
        assert_eq!(row.last_recovery_at, Some(row.updated_at));
        assert_eq!(
            (
                row.claimed_by,
                row.heartbeat_at,
                row.started_at,
                row.sub_status
            ),
            (None, None, None, None)
        );
    }
    let recoveries = events(&db, Some(task.id), Some(EventType::RecoveryReset)).await;
    assert_eq!(recoveries.len(), 2);
}

#[tokio::test]
async fn a_runner_without_the_claim_can_neither_complete_nor_fail() {
    let (db, p) = db_with_pipeline().await;
    let (holder, intruder) = (Uuid::new_v4(), Uuid::new_v4());
    let held = claimed_task_in(&db, p, "held", holder).await;
    let held = db.get_by_id(held.id).await.unwrap();
    let unclaimed = task_in(&db, p, "unclaimed", Running).await;
    let ready = task_in(&db, p, "ready", Ready).await;
    let events_before = count_events(&db, None).await;

    assert!(!db.mark_completed(held.id, Some(intruder)).await.unwrap());
    assert!(!db.mark_failed(held.id, "x", Some(intruder)).await.unwrap());
    assert!(!db.mark_completed(unclaimed.id, Some(holder)).await.unwrap());
    assert!(
        !db.mark_failed(unclaimed.id, "x", Some(holder))
            .await
            .unwrap()
    );
    assert!(!db.mark_failed(ready.id, "x", Some(holder)).await.unwrap());
    assert_eq!(
        db.mark_completed_many(vec![held.id, unclaimed.id], Some(intruder))
            .await
            .unwrap(),
        0
    );
    assert_eq!(db.get_by_id(held.id).await.unwrap(), held);
    assert_eq!(db.get_by_id(unclaimed.id).await.unwrap(), unclaimed);
    assert_eq!(db.get_by_id(ready.id).await.unwrap(), ready);
    assert_eq!(count_events(&db, None).await, events_before);

    // A runner that does not hold the claim is fenced off whatever the
    // status: `false`, never an error that depends on timing.
    assert!(!db.mark_completed(ready.id, Some(holder)).await.unwrap());

    assert!(db.mark_completed(held.id, Some(holder)).await.unwrap());
    // Completing released the claim: the holder is fenced off now too.
    assert!(!db.mark_completed(held.id, Some(holder)).await.unwrap());
    // Without a runner guard, an illegal move is an error.
    let result = db.mark_completed(held.id, None).await;
    assert!(
        matches!(
            result,
            Err(DalError::IllegalTransition {
                from: Completed,
                to: Completed,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(count_events(&db, None).await, events_before + 1);
}

#[tokio::test]
async fn a_runner_that_still_holds_the_claim_gets_illegal_transitions() {
    let (db, p) = db_with_pipeline().await;
    let runner = Uuid::new_v4();
    let task = task_in(&db, p, "reserved", Ready).await;
    assert_eq!(
        db.claim_for_runner(task.id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );
    let result = db.mark_completed(task.id, Some(runner)).await;
    assert!(
        matches!(result, Err(DalError::IllegalTransition { from: Ready, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_stale_runner_is_fenced_off_after_recovery_whatever_happened_since() {
    let (db, p) = db_with_pipeline().await;
    let (stale, fresh) = (Uuid::new_v4(), Uuid::new_v4());
    let task = ready_and_claimed(&db, p, "job", stale).await;

    // Recovery gives the task back: it is `Ready`, unclaimed.
    db.reset_task_for_recovery(task).await.unwrap();
    let before = db.get_by_id(task).await.unwrap();
    let events = count_events(&db, None).await;
    assert!(!db.mark_completed(task, Some(stale)).await.unwrap());
    assert!(!db.mark_failed(task, "late", Some(stale)).await.unwrap());
    assert_eq!(db.get_by_id(task).await.unwrap(), before);
    assert_eq!(count_events(&db, None).await, events);

    // Another runner claims it: the stale runner is still fenced off.
    assert_eq!(
        db.claim_ready_tasks_for_runner(fresh, 1).await.unwrap()[0].id,
        task
    );
    assert!(!db.mark_completed(task, Some(stale)).await.unwrap());
    assert!(db.mark_completed(task, Some(fresh)).await.unwrap());
    // And once it is finished.
    assert!(!db.mark_completed(task, Some(stale)).await.unwrap());
    assert!(!db.mark_failed(task, "late", Some(stale)).await.unwrap());
    assert_eq!(db.get_by_id(task).await.unwrap().status, Completed);
}

#[tokio::test]
async fn mark_completed_many_completes_only_running_tasks() {
    let (db, p) = db_with_pipeline().await;
    let mut running = Vec::new();
    for i in 0..3 {
        running.push(task_in(&db, p, &format!("run{i}"), Running).await.id);
    }
    let ready = task_in(&db, p, "ready", Ready).await;
    let done = task_in(&db, p, "done", Completed).await;
    let mut ids = running.clone();
    ids.extend([ready.id, done.id, Uuid::new_v4(), running[0]]);

    assert_eq!(db.mark_completed_many(ids, None).await.unwrap(), 3);
    for id in &running {
        let row = db.get_by_id(*id).await.unwrap();
        assert_eq!(row.status, Completed);
        assert!(row.completed_at.is_some());
        let events = events(&db, Some(*id), None).await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].event_type, EventType::TaskCompleted);
    }
    assert_eq!(db.get_by_id(ready.id).await.unwrap(), ready);
    assert_eq!(db.get_by_id(done.id).await.unwrap(), done);
    assert_eq!(events(&db, Some(ready.id), None).await.len(), 1);
    assert_eq!(db.mark_completed_many(Vec::new(), None).await.unwrap(), 0);
    assert_eq!(
        db.mark_completed_many(running, None).await.unwrap(),
        0,
        "already completed"
    );
}

#[tokio::test]
async fn mark_completed_many_with_a_runner_completes_only_its_claims() {
    let (db, p) = db_with_pipeline().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let tasks = db
        .create_many(
            (0..40)
                .map(|i| NewTaskExecution::new(p, format!("t{i}")).status(Running))
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();
    for (i, id) in ids.iter().enumerate() {
        claim(&db, *id, if i % 4 == 0 { b } else { a }).await;
    }
    assert_eq!(
        db.mark_completed_many(ids.clone(), Some(a)).await.unwrap(),
        30
    );
    for (i, id) in ids.iter().enumerate() {
        let row = db.get_by_id(*id).await.unwrap();
        let events = events(&db, Some(*id), None).await;
        if i % 4 == 0 {
            assert_eq!((row.status, row.claimed_by), (Running, Some(b)));
            assert_eq!(events.len(), 1);
        } else {
            assert_eq!((row.status, row.claimed_by), (Completed, None));
            assert_eq!(events.len(), 2);
            assert_eq!(events[1].runner_id, Some(a));
        }
    }
}

#[tokio::test]
async fn batches_of_one_task_follow_the_same_rules_as_larger_ones() {
    let (db, p) = db_with_pipeline().await;
    let (holder, other) = (Uuid::new_v4(), Uuid::new_v4());
    let waiting = task_in(&db, p, "waiting", NotStarted).await;
    let running = task_in(&db, p, "running", Running).await;
    claim(&db, running.id, holder).await;

    // Allowed: changed, with its event naming the runner.
    assert_eq!(db.mark_ready_many(vec![waiting.id]).await.unwrap(), 1);
    assert_eq!(db.get_by_id(waiting.id).await.unwrap().status, Ready);
    let ready_events = events(&db, Some(waiting.id), None).await;
    assert_eq!(ready_events.len(), 2);
    assert_eq!(ready_events[1].event_type, EventType::TaskReady);

    // Refused: nothing written and no error, as in a larger batch.
    let before = count_events(&db, None).await;
    assert_eq!(db.mark_ready_many(vec![running.id]).await.unwrap(), 0);
    assert_eq!(db.mark_ready_many(vec![Uuid::new_v4()]).await.unwrap(), 0);
    assert_eq!(
        db.mark_completed_many(vec![running.id], Some(other))
            .await
            .unwrap(),
        0,
        "another runner's claim is not completed"
    );
    assert_eq!(
        db.mark_completed_many(vec![waiting.id], None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(count_events(&db, None).await, before);
    let row = db.get_by_id(running.id).await.unwrap();
    assert_eq!((row.status, row.claimed_by), (Running, Some(holder)));

    assert_eq!(
        db.mark_completed_many(vec![running.id, running.id], Some(holder))
            .await
            .unwrap(),
        1,
        "a repeated id is one task"
    );
    let row = db.get_by_id(running.id).await.unwrap();
    assert_eq!((row.status, row.claimed_by), (Completed, None));
    let done = events(&db, Some(running.id), None).await;
    assert_eq!(done.last().unwrap().event_type, EventType::TaskCompleted);
    assert_eq!(done.last().unwrap().runner_id, Some(holder));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completions_of_one_task_succeed_exactly_once() {
    let (db, p) = db_with_pipeline().await;
    for round in 0..5 {
        let runner = Uuid::new_v4();
        let task = task_in(&db, p, &format!("t{round}"), Running).await;
        claim(&db, task.id, runner).await;
        let attempts = (0..8).map(|_| {
            let dal: TaskExecutionDal = (*db).clone();
            tokio::spawn(async move { dal.mark_completed(task.id, Some(runner)).await })
        });
        let results = futures::future::join_all(attempts).await;
        let mut wins = 0;
        for result in results {
            match result.unwrap() {
                Ok(true) => wins += 1,
                // The winner released the claim: the others are fenced off.
                Ok(false) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(
            events(&db, Some(task.id), None).await.len(),
            2,
            "created and one completion"
        );
    }
}
