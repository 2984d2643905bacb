//! Faults under a running handle: a write lock held elsewhere and a pool that
//! stays busy (every wait is bounded by the configured timeouts and ends in
//! `DalError::Timeout` naming the one that expired), a database that was
//! never migrated or lost its tables (`NotMigrated`), and a SQLite file
//! deleted or replaced under the handle (`DatabaseFileMissing`).

use std::time::{Duration, Instant};

use te_testkit::TestDb;

use task_execution_dal::prelude::*;

use crate::common::{db_with_pipeline, hold_write_lock, task_in};

/// The timeouts the bounded-wait tests configure.
const TIMEOUT: Duration = Duration::from_millis(1500);
/// How long the lock or the connection is held: longer than the 8 queued
/// calls would wait one after another before the fix (8 x TIMEOUT).
const HELD: Duration = Duration::from_secs(14);
/// Concurrent calls queued behind the held lock or connection.
const CALLS: usize = 8;

/// Runs `CALLS` claims at once and returns each one's error and how long it waited.
async fn concurrent_claims(dal: &TaskExecutionDal) -> Vec<(DalError, Duration)> {
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let dal = dal.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let err = dal
                    .claim_ready_task(1)
                    .await
                    .expect_err("the claim cannot get the lock or a connection");
                (err, started.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for call in calls {
        out.push(call.await.unwrap());
    }
    out
}

/// Each call failed with `Timeout` naming one of `what`, within a generous
/// bound of one timeout (a correctness bound on waiting, not a speed measurement:
/// before the fix the n-th call waited about n timeouts).
fn assert_all_timed_out(results: &[(DalError, Duration)], what: &[&str]) {
    assert_eq!(results.len(), CALLS);
    for (err, waited) in results {
        assert!(
            matches!(err, DalError::Timeout { what: w, after } if what.contains(w) && *after == TIMEOUT),
            "expected Timeout naming one of {what:?}, got {err:?}"
        );
        assert!(
            *waited < TIMEOUT * 3,
            "a call waited {waited:?}, more than 3 x the {TIMEOUT:?} timeout ({err})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_behind_a_lock_held_elsewhere_all_fail_within_about_one_busy_timeout() {
    let db = TestDb::new().await;
    if db.sqlite_path().is_none() {
        // PostgreSQL has no database-wide write lock; the pool's bound is
        // tested by `calls_waiting_for_a_busy_pool_all_fail_within_about_one_acquire_timeout`.
        assert_eq!(db.backend(), Backend::Postgres);
        return;
    }
    let dal = TaskExecutionDal::connect_with(
        DalConfig::new(db.url())
            .sqlite_busy_timeout(TIMEOUT)
            .acquire_timeout(TIMEOUT),
    )
    .await
    .unwrap();

    // Another connection (as another process would) takes the write lock and
    // keeps it.
    let holder = hold_write_lock(&db, HELD).expect("a SQLite database");

    let results = concurrent_claims(&dal).await;
    assert_all_timed_out(&results, &["sqlite_busy_timeout"]);
    holder.join().unwrap();
    // Once the lock is free the same handle writes again.
    assert!(dal.claim_ready_task(1).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_waiting_for_a_busy_pool_all_fail_within_about_one_acquire_timeout() {
    let db = TestDb::new().await;
    let dal = TaskExecutionDal::connect_with(
        DalConfig::new(db.url())
            .max_connections(1)
            .acquire_timeout(TIMEOUT)
            .sqlite_busy_timeout(TIMEOUT),
    )
    .await
    .unwrap();
    // One read holds the only connection.
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let busy = {
        let dal = dal.clone();
        tokio::spawn(async move {
            dal.run(move |_conn| {
                let _ = held_tx.send(());
                std::thread::sleep(HELD / 2);
                Ok(())
            })
            .await
        })
    };
    held_rx.await.unwrap();

    let results = concurrent_claims(&dal).await;
    match db.backend() {
        Backend::Postgres => assert_all_timed_out(&results, &["acquire_timeout"]),
        Backend::Sqlite => {
            // The first writer waits for the connection; the writers queued
            // behind it for their turn at the write lock, within the same
            // bound.
            assert_all_timed_out(&results, &["acquire_timeout", "sqlite_busy_timeout"]);
            assert!(
                results.iter().any(|(err, _)| matches!(
                    err,
                    DalError::Timeout {
                        what: "acquire_timeout",
                        ..
                    }
                )),
                "{results:?}"
            );
        }
    }
    busy.await.unwrap().unwrap();
    assert!(dal.claim_ready_task(1).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unmigrated_database_says_to_run_the_migrations() {
    let db = TestDb::unmigrated_on(te_testkit::backend_from_env()).await;
    let err = db
        .create_pipeline_execution(NewPipelineExecution::new("p"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DalError::NotMigrated { table } if table == "pipeline_executions"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("run_migrations") && text.contains("te migrate"),
        "{text}"
    );
    let err = db.claim_ready_task(1).await.unwrap_err();
    assert!(
        matches!(&err, DalError::NotMigrated { table } if table == "task_executions"),
        "{err:?}"
    );
    // After migrating, the same handle works.
    db.run_migrations().await.unwrap();
    db.create_pipeline_execution(NewPipelineExecution::new("p"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_vanished_database_fails_clearly_and_writes_nothing() {
    let (db, pid) = db_with_pipeline().await;
    let task = task_in(&db, pid, "t", TaskStatus::Ready).await;
    match db.sqlite_path() {
        Some(path) => {
            // The file (and its WAL) is deleted under the running handle.
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let err = db.claim_ready_task(1).await.unwrap_err();
            assert!(
                matches!(&err, DalError::DatabaseFileMissing { path: p } if p == path.to_str().unwrap()),
                "{err:?}"
            );
            assert!(!path.exists(), "nothing was written: no file came back");
            let err = db.get_by_id(task.id).await.unwrap_err();
            assert!(
                matches!(err, DalError::DatabaseFileMissing { .. }),
                "{err:?}"
            );

            // A new file at the same path is another database: still refused.
            let other = TaskExecutionDal::connect(db.url()).await.unwrap();
            other.run_migrations().await.unwrap();
            let err = db.get_by_id(task.id).await.unwrap_err();
            assert!(
                matches!(err, DalError::DatabaseFileMissing { .. }),
                "{err:?}"
            );
            assert!(other.get_by_id(task.id).await.unwrap_err().is_not_found());
        }
        None => {
            // PostgreSQL: the tables are dropped under the running handle.
            db.revert_migrations().await.unwrap();
            let err = db.claim_ready_task(1).await.unwrap_err();
            assert!(
                matches!(&err, DalError::NotMigrated { table } if table == "task_executions"),
                "{err:?}"
            );
            let err = db.get_by_id(task.id).await.unwrap_err();
            assert!(matches!(err, DalError::NotMigrated { .. }), "{err:?}");
        }
    }
}
