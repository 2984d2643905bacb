//! A cancel is final for everything, and a pipeline's status and pause stay
//! consistent, on the backend `TE_TEST_BACKEND` selects: no task is created
//! in a cancelled pipeline (also racing the cancel), no promotion makes one
//! of its tasks `Ready`, `update_pipeline_status(Cancelled)` is a cancel, a
//! terminal status clears the pause and is stamped at creation, a status set
//! again writes nothing, a paused pipeline gives no task to a runner, a
//! promotion stays inside its pipeline, and refusals say what was refused.

use serde_json::json;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{Lock, LockHolder, RowCounts, row_counts, task_in, task_rows, until_waiting};

use TaskStatus::{NotStarted, Ready, Running, Skipped};

/// The terminal pipeline statuses.
const TERMINAL: [PipelineStatus; 3] = [
    PipelineStatus::Completed,
    PipelineStatus::Failed,
    PipelineStatus::Cancelled,
];

async fn pipeline(dal: &TaskExecutionDal, name: &str) -> Uuid {
    dal.create_pipeline_execution(NewPipelineExecution::new(name))
        .await
        .unwrap()
        .id
}

fn new_tasks(
    pipeline_id: Uuid,
    prefix: &str,
    n: usize,
    status: TaskStatus,
) -> Vec<NewTaskExecution> {
    (0..n)
        .map(|i| NewTaskExecution::new(pipeline_id, format!("{prefix}-{i:04}")).status(status))
        .collect()
}

/// Asserts that `result` is `IllegalPipelineTransition` of `id` from `from`.
fn assert_refused_from<T: std::fmt::Debug>(
    result: Result<T, DalError>,
    id: Uuid,
    from: PipelineStatus,
) -> DalError {
    match result {
        Err(err @ DalError::IllegalPipelineTransition { .. }) => {
            let DalError::IllegalPipelineTransition {
                pipeline_id,
                from: was,
                ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!((*pipeline_id, *was), (id, from), "{err}");
            err
        }
        other => panic!("expected IllegalPipelineTransition, got {other:?}"),
    }
}

/// Every task of `pipeline_id` by status.
async fn statuses(dal: &TaskExecutionDal, pipeline_id: Uuid) -> Vec<TaskStatus> {
    dal.get_all_tasks_for_pipeline(pipeline_id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.status)
        .collect()
}

fn same_counts(before: RowCounts, after: RowCounts) {
    assert_eq!(before, after, "a refused call wrote something");
}

// --- creation in a cancelled pipeline ---------------------------------------

#[tokio::test]
async fn creating_tasks_in_a_cancelled_pipeline_is_refused_writing_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "cancelled").await;
    db.cancel_pipeline(p, "stop").await.unwrap();
    let before = row_counts(&db).await;

    let one = db
        .create(NewTaskExecution::new(p, "late").status(Ready))
        .await;
    assert_refused_from(one, p, PipelineStatus::Cancelled);
    let many = db.create_many(new_tasks(p, "late", 3, NotStarted)).await;
    assert_refused_from(many, p, PipelineStatus::Cancelled);
    // One row of another, live pipeline does not let the batch through.
    let live = pipeline(&db, "live").await;
    let before_mixed = row_counts(&db).await;
    let mixed = db
        .create_many(vec![
            NewTaskExecution::new(live, "fine"),
            NewTaskExecution::new(p, "late"),
        ])
        .await;
    assert_refused_from(mixed, p, PipelineStatus::Cancelled);
    same_counts(before_mixed, row_counts(&db).await);

    assert!(db.get_all_tasks_for_pipeline(p).await.unwrap().is_empty());
    assert_eq!(before.tasks, row_counts(&db).await.tasks);
}

/// A `create_many` of ready tasks racing with a cancel of their pipeline:
/// it either commits first, and the cancel skips what it created, or it is
/// refused; the cancelled pipeline keeps no `Ready` task. On PostgreSQL the
/// cancel is made to lock the pipeline and then wait (another connection
/// holds the row of one of its tasks) while the creation runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creating_tasks_racing_with_a_cancel_never_leaves_a_ready_task() {
    creation_racing_with_a_cancel(50).await;
}

/// The same race with `create` of one task, which on PostgreSQL is one
/// statement locking the pipeline, checking it and inserting, no transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creating_one_task_racing_with_a_cancel_never_leaves_a_ready_task() {
    creation_racing_with_a_cancel(1).await;
}

/// A creation of `n` tasks (`create` for one, else `create_many`) racing
/// with a cancel of their pipeline.
async fn creation_racing_with_a_cancel(n: usize) {
    let db = TestDb::new().await;
    let dal = crate::common::handle_with_pool(&db, 4).await;
    let p = pipeline(&db, "racing").await;
    let held = task_in(&db, p, "held", Ready).await;

    let holder = LockHolder::take(&db, Lock::Row(held.id));
    let cancel = tokio::spawn({
        let dal = dal.clone();
        async move { dal.cancel_pipeline(p, "race").await }
    });
    until_waiting(&db, 1, || cancel.is_finished()).await;
    let create = tokio::spawn({
        let dal = dal.clone();
        async move {
            let mut new = new_tasks(p, "late", n, Ready);
            if n == 1 {
                dal.create(new.remove(0)).await.map(|row| vec![row])
            } else {
                dal.create_many(new).await
            }
        }
    });
    until_waiting(&db, 2, || create.is_finished()).await;
    holder.release();
    let cancelled = cancel.await.unwrap().unwrap();
    let created = create.await.unwrap();

    let left = statuses(&db, p).await;
    assert!(
        left.iter().all(|s| *s == Skipped),
        "a cancelled pipeline kept tasks that nothing will claim: {left:?}"
    );
    match created {
        Ok(rows) => assert_eq!((rows.len(), cancelled.skipped), (n, n + 1)),
        Err(err) => {
            assert_refused_from(Err::<(), _>(err), p, PipelineStatus::Cancelled);
            assert_eq!(left.len(), 1);
        }
    }
    assert!(db.claim_ready_task(100).await.unwrap().is_empty());
    assert!(db.check_pipeline_completion(p).await.unwrap());
}

// --- promotion in a cancelled pipeline ---------------------------------------

/// Tasks left `NotStarted` in a cancelled pipeline (as an earlier version
/// could leave them, or rows written by hand) are never made `Ready`:
/// `mark_ready` is refused, `mark_ready_many` and `complete_and_promote`
/// leave them alone, and nothing of a refusal is written.
#[tokio::test]
async fn no_promotion_makes_a_task_of_a_cancelled_pipeline_ready() {
    let db = TestDb::new().await;
    let (p, running, runner) =
        crate::common::claimed_in_new_pipeline(&db, "cancelled", "running").await;
    db.cancel_pipeline(p, "stop").await.unwrap();
    let names = (0..4).map(|i| format!("stuck-{i}"));
    let stuck = task_rows(p, NotStarted, chrono::Utc::now(), names);
    let ids: Vec<Uuid> = stuck.iter().map(|t| t.id).collect();
    db.insert_tasks(stuck).await;
    let before = row_counts(&db).await;

    assert_refused_from(db.mark_ready(ids[0]).await, p, PipelineStatus::Cancelled);
    assert_eq!(db.mark_ready_many(vec![ids[1]]).await.unwrap(), 0);
    assert_eq!(db.mark_ready_many(vec![ids[1], ids[2]]).await.unwrap(), 0);
    same_counts(before, row_counts(&db).await);
    let promoted = db
        .complete_and_promote(running, Some(runner), &json!({"out": 1}), vec![ids[3]])
        .await
        .unwrap();
    assert_eq!(
        promoted,
        Some(0),
        "the completion counts, the promotion not"
    );
    for id in &ids {
        assert_eq!(db.get_by_id(*id).await.unwrap().status, NotStarted);
    }
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
}

// --- update_pipeline_status ---------------------------------------------------

#[tokio::test]
async fn update_pipeline_status_to_cancelled_is_a_cancel() {
    let db = TestDb::new().await;
    let (p, running, runner) =
        crate::common::claimed_in_new_pipeline(&db, "via-status", "running").await;
    let waiting = db
        .create_many(new_tasks(p, "wait", 2, NotStarted))
        .await
        .unwrap();
    let ready = db
        .create_many(new_tasks(p, "ready", 2, Ready))
        .await
        .unwrap();
    db.pause_pipeline(p).await.unwrap();

    let row = db
        .update_pipeline_status(p, PipelineStatus::Cancelled, Some("operator"))
        .await
        .unwrap();
    assert_eq!(row.status, PipelineStatus::Cancelled);
    assert!(row.completed_at.is_some());
    assert!(!row.paused, "a terminal pipeline is never paused");
    for task in waiting.iter().chain(&ready) {
        assert_eq!(db.get_by_id(task.id).await.unwrap().status, Skipped);
    }
    assert_eq!(db.get_by_id(running).await.unwrap().status, Running);
    let events = db.get_events_for_pipeline(p).await.unwrap();
    let skipped = events
        .iter()
        .filter(|e| e.event_type == EventType::TaskSkipped)
        .count();
    assert_eq!(skipped, 4, "one TaskSkipped per skipped task");
    let changed = events
        .iter()
        .filter(|e| e.event_type == EventType::PipelineStatusChanged)
        .count();
    assert_eq!(changed, 1);
    assert_eq!(
        db.heartbeat(running, runner).await.unwrap(),
        HeartbeatResult::Cancelled
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn reaching_a_terminal_status_clears_the_pause() {
    let db = TestDb::new().await;
    for status in TERMINAL {
        let p = pipeline(&db, status.as_str()).await;
        db.pause_pipeline(p).await.unwrap();
        let row = db.update_pipeline_status(p, status, None).await.unwrap();
        assert!(!row.paused, "{status}");
        assert!(!db.get_pipeline_execution(p).await.unwrap().paused);
    }
    let p = pipeline(&db, "cancel").await;
    db.pause_pipeline(p).await.unwrap();
    db.cancel_pipeline(p, "stop").await.unwrap();
    assert!(!db.get_pipeline_execution(p).await.unwrap().paused);
}

#[tokio::test]
async fn setting_the_status_a_pipeline_already_has_writes_nothing() {
    let db = TestDb::new().await;
    for status in std::iter::once(PipelineStatus::Running).chain(TERMINAL) {
        let p = pipeline(&db, status.as_str()).await;
        let first = db.update_pipeline_status(p, status, Some("first")).await;
        let first = match status {
            // Running -> Running is already the no-op.
            PipelineStatus::Running => db.get_pipeline_execution(p).await.unwrap(),
            _ => first.unwrap(),
        };
        let before = row_counts(&db).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let again = db
            .update_pipeline_status(p, status, Some("again"))
            .await
            .unwrap();
        same_counts(before, row_counts(&db).await);
        assert_eq!(again, first, "{status}: nothing changed");
        assert_eq!(db.get_pipeline_execution(p).await.unwrap(), first);
    }
}

#[tokio::test]
async fn a_pipeline_created_with_a_terminal_status_is_stamped_and_pruned() {
    let db = TestDb::new().await;
    for status in TERMINAL {
        let mut new = NewPipelineExecution::new(status.as_str());
        new.status = status;
        let row = db.create_pipeline_execution(new).await.unwrap();
        assert_eq!(row.completed_at, Some(row.created_at), "{status}");
        let stored = db.get_pipeline_execution(row.id).await.unwrap();
        assert_eq!(stored.completed_at, Some(row.created_at), "{status}");
    }
    let mut pending = NewPipelineExecution::new("pending");
    pending.status = PipelineStatus::Pending;
    let pending = db.create_pipeline_execution(pending).await.unwrap();
    assert_eq!(pending.completed_at, None);

    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let pruned = db.prune_pipelines(later, 10).await.unwrap();
    assert_eq!(pruned.pipelines, 3);
    assert_eq!(row_counts(&db).await.pipelines, 1);
}

// --- runner claims of a paused pipeline's task ---------------------------------

#[tokio::test]
async fn claim_for_runner_of_a_paused_pipelines_task_is_refused_writing_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "paused").await;
    let task = task_in(&db, p, "t", Ready).await;
    db.pause_pipeline(p).await.unwrap();
    let before = row_counts(&db).await;
    let runner = Uuid::new_v4();

    assert_eq!(
        db.claim_for_runner(task.id, runner).await.unwrap(),
        RunnerClaimResult::AlreadyClaimed
    );
    same_counts(before, row_counts(&db).await);
    let row = db.get_by_id(task.id).await.unwrap();
    assert_eq!((row.status, row.claimed_by), (Ready, None));

    db.resume_pipeline(p).await.unwrap();
    assert_eq!(
        db.claim_for_runner(task.id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );
}

// --- complete_and_promote's scope ------------------------------------------------

#[tokio::test]
async fn complete_and_promote_promotes_only_tasks_of_the_completed_tasks_pipeline() {
    let db = TestDb::new().await;
    let mine = pipeline(&db, "mine").await;
    let other = pipeline(&db, "other").await;
    let runner = Uuid::new_v4();
    let done = crate::common::ready_and_claimed(&db, mine, "done", runner).await;
    let dependent = task_in(&db, mine, "dependent", NotStarted).await;
    let foreign = task_in(&db, other, "foreign", NotStarted).await;
    let foreign_too = task_in(&db, other, "foreign-too", NotStarted).await;

    // One foreign id (the single-task path) and two (the batch path).
    for dependents in [vec![foreign.id], vec![foreign.id, foreign_too.id]] {
        let p = pipeline(&db, "scratch").await;
        let t = crate::common::ready_and_claimed(&db, p, "t", runner).await;
        let promoted = db
            .complete_and_promote(t, Some(runner), &json!({}), dependents)
            .await
            .unwrap();
        assert_eq!(promoted, Some(0));
    }
    let promoted = db
        .complete_and_promote(
            done,
            Some(runner),
            &json!({}),
            vec![dependent.id, foreign.id, foreign_too.id],
        )
        .await
        .unwrap();
    assert_eq!(promoted, Some(1));
    assert_eq!(db.get_by_id(dependent.id).await.unwrap().status, Ready);
    assert_eq!(db.get_by_id(foreign.id).await.unwrap().status, NotStarted);
    assert_eq!(
        db.get_by_id(foreign_too.id).await.unwrap().status,
        NotStarted
    );
    let foreign_events = db.get_events_for_task(foreign.id).await.unwrap();
    assert_eq!(foreign_events.len(), 1, "only its TaskCreated");
}

// --- refusals say what was refused --------------------------------------------

#[tokio::test]
async fn refused_pause_resume_and_cancel_name_the_operation_and_the_status() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "done").await;
    db.update_pipeline_status(p, PipelineStatus::Completed, None)
        .await
        .unwrap();
    let before = row_counts(&db).await;

    let err = assert_refused_from(db.pause_pipeline(p).await, p, PipelineStatus::Completed);
    assert_eq!(
        err.to_string(),
        format!("cannot pause pipeline execution {p}: it is Completed")
    );
    let err = assert_refused_from(
        db.cancel_pipeline(p, "late").await,
        p,
        PipelineStatus::Completed,
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot cancel pipeline execution {p}: it is Completed"
        )),
        "{message}"
    );
    assert!(message.contains("Cancelled"), "{message}");
    same_counts(before, row_counts(&db).await);

    // A paused pipeline made terminal by a version that kept the pause.
    let mut row = NewPipelineExecution::new("kept-paused").into_row(None, chrono::Utc::now());
    row.status = PipelineStatus::Failed;
    row.paused = true;
    let kept = db.insert_pipeline(row).await;
    let before_resume = row_counts(&db).await;
    let err = assert_refused_from(db.resume_pipeline(kept).await, kept, PipelineStatus::Failed);
    assert_eq!(
        err.to_string(),
        format!("cannot resume pipeline execution {kept}: it is Failed")
    );
    same_counts(before_resume, row_counts(&db).await);
}
