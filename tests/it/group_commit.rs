//! Writes that commit together: on SQLite the writes queued behind one
//! another commit in one transaction (group commit), yet each write still
//! succeeds or fails alone — a refused or panicking write leaves nothing
//! behind and undoes none of the writes it was committed with, and the
//! handle goes on. On PostgreSQL every write is its own transaction and the
//! same holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::{Connection, InstrumentationEvent};
use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::bind;
use te_testkit::TestDb;

use task_execution_dal::prelude::*;

use crate::common::{
    count_events, handle_with_pool, hold_write_lock, ready_pipeline, task_statuses,
};

/// How long the SQLite write lock is held elsewhere while the writes queue
/// behind it: far longer than spawning them takes.
const HOLD: Duration = Duration::from_millis(400);

/// Counts the top-level commits of the handle's (only) pooled connection.
pub(crate) async fn count_commits(dal: &TaskExecutionDal) -> Arc<AtomicUsize> {
    let commits = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&commits);
    dal.run(move |conn| {
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CommitTransaction { depth, .. } = event
                && depth.get() == 1
            {
                sink.fetch_add(1, Ordering::SeqCst);
            }
        });
        Ok(())
    })
    .await
    .unwrap();
    commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_writes_commit_together_and_a_refused_one_writes_nothing() {
    let db = TestDb::new().await;
    // One pooled connection: every write below commits on it.
    let dal = handle_with_pool(&db, 1).await;
    let (_, tasks) = ready_pipeline(&dal, 16).await;
    let commits = count_commits(&dal).await;

    let holder = hold_write_lock(&db, HOLD);
    // Even tasks are skipped (allowed from Ready); odd ones are completed
    // without having run (refused): all queued at once.
    let calls: Vec<_> = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let (dal, id) = (dal.clone(), task.id);
            tokio::spawn(async move {
                if i % 2 == 0 {
                    dal.mark_skipped(id, "not needed").await.map(|()| true)
                } else {
                    dal.mark_completed(id, None).await
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    if let Some(holder) = holder {
        holder.join().unwrap();
    }

    let statuses = task_statuses(&dal).await;
    for (i, (task, result)) in tasks.iter().zip(results).enumerate() {
        let events = count_events(&dal, Some(task.id)).await;
        if i % 2 == 0 {
            assert!(result.unwrap(), "skipping task {i} succeeds");
            assert_eq!(statuses[&task.id], TaskStatus::Skipped);
            assert_eq!(events, 2, "task {i}: its creation and its skip");
        } else {
            assert!(
                matches!(result, Err(DalError::IllegalTransition { .. })),
                "completing task {i}, which never ran, is refused: {result:?}"
            );
            assert_eq!(statuses[&task.id], TaskStatus::Ready, "task {i}");
            assert_eq!(events, 1, "task {i}: its creation only");
        }
    }
    if dal.backend() == Backend::Sqlite {
        // Eight writes succeeded behind the lock; they shared commits.
        let commits = commits.load(Ordering::SeqCst);
        assert!(
            (1..8).contains(&commits),
            "8 writes queued behind one lock committed {commits} times"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_panics_fails_alone_and_the_handle_goes_on() {
    let db = TestDb::new().await;
    let (_, tasks) = ready_pipeline(&db, 5).await;
    let dal = db.dal().clone();

    let holder = hold_write_lock(&db, HOLD);
    // Four ordinary writes, and one of the caller's own that changes a row
    // and then panics, all queued at once.
    let skips: Vec<_> = tasks[..4]
        .iter()
        .map(|task| {
            let (dal, id) = (dal.clone(), task.id);
            tokio::spawn(async move { dal.mark_skipped(id, "not needed").await })
        })
        .collect();
    let doomed = tasks[4].id;
    let panicking = {
        let dal = dal.clone();
        tokio::spawn(async move {
            dal.write(move |conn| -> Result<(), DalError> {
                diesel::update(
                    task_executions::table.filter(task_executions::id.eq(bind::id(doomed))),
                )
                .set(task_executions::error_details.eq("half-written"))
                .execute(conn)?;
                panic!("the caller's write broke");
            })
            .await
        })
    };
    for skip in skips {
        skip.await.unwrap().unwrap();
    }
    let err = panicking.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, DalError::Interrupted(Interruption::Panicked(m)) if m.contains("the caller's write broke")),
        "{err:?}"
    );
    if let Some(holder) = holder {
        holder.join().unwrap();
    }

    let statuses = task_statuses(&dal).await;
    for task in &tasks[..4] {
        assert_eq!(statuses[&task.id], TaskStatus::Skipped);
    }
    let untouched = dal.get_by_id(doomed).await.unwrap();
    assert_eq!(untouched.status, TaskStatus::Ready);
    assert_eq!(
        untouched.error_details, None,
        "the panicking write left nothing"
    );
    // The handle writes on.
    assert!(dal.mark_skipped(doomed, "after the panic").await.is_ok());
    assert_eq!(count_events(&dal, Some(doomed)).await, 2);
}

/// A call dropped while its write waits for a lock held elsewhere may or may
/// not commit; the row tells which, and it is whole either way. The first
/// write has already begun waiting for the lock when its caller goes: it
/// commits on both backends. The second is dropped while it waits behind
/// the first: on SQLite, where it is still in the handle's queue, it never
/// runs; on PostgreSQL, where its statement is already with the server, it
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_call_may_or_may_not_have_committed_and_the_row_tells() {
    let db = TestDb::new().await;
    let dal = handle_with_pool(&db, 4).await;
    let (_, tasks) = ready_pipeline(&dal, 2).await;
    let (first, second) = (tasks[0].id, tasks[1].id);

    let holder = crate::common::LockHolder::take(&db, crate::common::Lock::Row(first));
    let skip = |id| {
        let dal = dal.clone();
        tokio::spawn(async move { dal.mark_skipped(id, "dropped").await })
    };
    let waiting = skip(first);
    crate::common::until_waiting(&db, 1, || waiting.is_finished()).await;
    // On PostgreSQL the second waits for a row lock too: the first's.
    let behind = {
        let dal = dal.clone();
        tokio::spawn(async move {
            dal.write(move |conn| {
                diesel::update(
                    task_executions::table.filter(task_executions::id.eq(bind::id(first))),
                )
                .set(task_executions::updated_at.eq(bind::ts(chrono::Utc::now())))
                .execute(conn)?;
                diesel::update(
                    task_executions::table.filter(task_executions::id.eq(bind::id(second))),
                )
                .set(task_executions::error_details.eq("dropped too"))
                .execute(conn)?;
                Ok(())
            })
            .await
        })
    };
    crate::common::until_waiting(&db, 2, || behind.is_finished()).await;
    waiting.abort();
    behind.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert!(behind.await.unwrap_err().is_cancelled());
    holder.release();

    // The first had begun waiting for the lock: it commits, whole.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dal.get_by_id(first).await.unwrap().status != TaskStatus::Skipped {
        assert!(
            std::time::Instant::now() < deadline,
            "the first never committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        count_events(&dal, Some(first)).await,
        2,
        "its creation and its skip"
    );
    // The second: whole or not at all, as the backend says.
    let expected = match dal.backend() {
        Backend::Sqlite => None,
        Backend::Postgres => Some("dropped too"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = dal.get_by_id(second).await.unwrap();
        if row.error_details.as_deref() == expected || std::time::Instant::now() > deadline {
            assert_eq!(row.error_details.as_deref(), expected);
            assert_eq!(row.status, TaskStatus::Ready);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The handle writes on.
    dal.mark_skipped(second, "after").await.unwrap();
}
