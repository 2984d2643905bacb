//! Waiting for work on the backend `TE_TEST_BACKEND` selects: a waiter in
//! `wait_for_ready` wakes when another handle (standing in for another
//! process) or its own handle makes a task ready or resumes a pipeline, and
//! returns `false` at its timeout, never before, when nothing is written.

use std::time::{Duration, Instant};

use te_testkit::TestDb;
use tokio::task::JoinHandle;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{assert_invalid, task_in, task_rows};

use TaskStatus::{NotStarted, Ready};

/// Long enough never to be reached when a wake-up is due: reaching it fails
/// the test, it is not a speed figure.
const GENEROUS: Duration = Duration::from_secs(60);

async fn pipeline(dal: &TaskExecutionDal, name: &str) -> Uuid {
    dal.create_pipeline_execution(NewPipelineExecution::new(name))
        .await
        .unwrap()
        .id
}

/// Starts a waiter on `dal` and gives it time to be in place (its listener
/// connected, its first `data_version` read) before the caller writes.
async fn waiter(dal: &TaskExecutionDal) -> JoinHandle<Result<bool, DalError>> {
    // The first call opens the listener / the data_version connection.
    dal.wait_for_ready(Duration::from_millis(1)).await.unwrap();
    let dal = dal.clone();
    let handle = tokio::spawn(async move { dal.wait_for_ready(GENEROUS).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!handle.is_finished(), "nothing was written yet");
    handle
}

async fn other_handle(db: &TestDb) -> TaskExecutionDal {
    TaskExecutionDal::connect(db.url()).await.unwrap()
}

/// A fresh database, a second handle on it (standing in for another
/// process), and a pipeline named `name` that handle created.
async fn pipeline_elsewhere(name: &str) -> (TestDb, TaskExecutionDal, Uuid) {
    let db = TestDb::new().await;
    let other = other_handle(&db).await;
    let pipeline_id = pipeline(&other, name).await;
    (db, other, pipeline_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_ready_task_elsewhere_wakes_a_waiter() {
    let (db, other, p) = pipeline_elsewhere("wake-create").await;
    let waiting = waiter(&db).await;
    task_in(&other, p, "t", Ready).await;
    assert!(waiting.await.unwrap().unwrap(), "woken before the timeout");
    assert_eq!(db.claim_ready_task(1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_ready_task_on_the_same_handle_wakes_a_waiter() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "wake-same").await;
    let waiting = waiter(&db).await;
    task_in(&db, p, "t", Ready).await;
    assert!(waiting.await.unwrap().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_a_task_ready_elsewhere_wakes_a_waiter() {
    let (db, other, p) = pipeline_elsewhere("wake-mark").await;
    let task = task_in(&other, p, "t", NotStarted).await;
    let waiting = waiter(&db).await;
    other.mark_ready(task.id).await.unwrap();
    assert!(waiting.await.unwrap().unwrap());
    assert_eq!(db.claim_ready_task(1).await.unwrap()[0].id, task.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_paused_pipeline_elsewhere_wakes_a_waiter() {
    let (db, other, p) = pipeline_elsewhere("wake-resume").await;
    task_in(&other, p, "t", Ready).await;
    other.pause_pipeline(p).await.unwrap();
    assert!(db.claim_ready_task(1).await.unwrap().is_empty());
    let waiting = waiter(&db).await;
    other.resume_pipeline(p).await.unwrap();
    assert!(waiting.await.unwrap().unwrap());
    assert_eq!(db.claim_ready_task(1).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_wakes_on_one_ready_task() {
    let (db, other, p) = pipeline_elsewhere("wake-all").await;
    let first = waiter(&db).await;
    let second = waiter(&db).await;
    task_in(&other, p, "t", Ready).await;
    assert!(first.await.unwrap().unwrap());
    assert!(second.await.unwrap().unwrap());
}

#[tokio::test]
async fn returns_false_at_the_timeout_and_not_before_when_nothing_is_written() {
    let db = TestDb::new().await;
    let _other = other_handle(&db).await;
    let p = pipeline(&db, "wake-none").await;
    task_in(&db, p, "t", Ready).await;
    // A claim that finds nothing to do must not wake anyone either.
    db.claim_ready_task(1).await.unwrap();
    db.wait_for_ready(Duration::from_millis(1)).await.unwrap();
    for timeout in [Duration::ZERO, Duration::from_millis(300)] {
        let began = Instant::now();
        let woken = db.wait_for_ready(timeout).await.unwrap();
        assert!(!woken, "nothing was written during the wait");
        assert!(began.elapsed() >= timeout, "never before the timeout");
    }
}

#[tokio::test]
async fn an_absurd_timeout_is_refused() {
    let db = TestDb::new().await;
    let absurd = Duration::from_secs(25 * 60 * 60);
    assert_invalid(db.wait_for_ready(absurd).await, "timeout");
}

/// The caller's own writes answered before its wait began never wake it,
/// whether or not they made anything ready to claim: a worker loop does not
/// spin on its own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_own_answered_writes_never_wake_it() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "own-writes").await;
    // Tasks already running, written as rows (nothing made ready).
    let names = (0..8).map(|i| format!("running-{i}"));
    let running = task_rows(p, TaskStatus::Running, chrono::Utc::now(), names);
    let ids: Vec<Uuid> = running.iter().map(|t| t.id).collect();
    db.insert_tasks(running).await;
    db.wait_for_ready(Duration::from_millis(1)).await.unwrap();
    for (i, id) in ids.into_iter().enumerate() {
        // A task waiting for its dependencies.
        task_in(&db, p, &format!("waiting-{i}"), NotStarted).await;
        let woken = db.wait_for_ready(Duration::from_millis(150)).await.unwrap();
        assert!(!woken, "round {i}: woken by its own create");
        // A completion, as a worker loop writes one before it waits again.
        db.complete_with_context(id, None, &serde_json::json!({}))
            .await
            .unwrap();
        let woken = db.wait_for_ready(Duration::from_millis(150)).await.unwrap();
        assert!(!woken, "round {i}: woken by its own completion");
    }
}

/// The same for writes that do make a task ready (on PostgreSQL their
/// notification may reach the handle's listener only after the next wait
/// began): a worker that made work ready and waits is not woken by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_own_answered_ready_writes_never_wake_it() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "own-ready-writes").await;
    db.wait_for_ready(Duration::from_millis(1)).await.unwrap();
    for i in 0..10 {
        let task = task_in(&db, p, &format!("ready-{i}"), NotStarted).await;
        db.mark_ready(task.id).await.unwrap();
        let woken = db.wait_for_ready(Duration::from_millis(100)).await.unwrap();
        assert!(!woken, "round {i}: woken by its own mark_ready");
    }
}
