//! A handle behind a connection pooler in transaction mode: with
//! `pgbouncer=true` every test of this binary passes through one (`cargo
//! xtask test` runs them so when `TE_TEST_POOLER_URL` names a pooler);
//! without the flag, the first failure names it.

use std::time::{Duration, Instant};

use te_testkit::TestDb;

use task_execution_dal::prelude::*;

use crate::common::{count_of, pipeline};

#[tokio::test]
async fn without_the_flag_a_pooler_failure_names_the_flag() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let url = db.url().replace("pgbouncer=true", "pgbouncer=false");
    let one_connection = || async {
        TaskExecutionDal::connect_with(DalConfig::new(&url).max_connections(1))
            .await
            .unwrap()
    };
    let (a, b) = (one_connection().await, one_connection().await);
    // Each handle prepares its first statement under the name its
    // connection gives it first (`__diesel_stmt_0`).
    let first = a.get_pipeline_execution(p.id).await;
    let second = b.get_pipeline_execution(p.id).await;
    if db.through_pooler() {
        // The pooler hands both transactions to the same idle server
        // connection, where the name is taken already.
        let err = first.and(second).unwrap_err();
        assert!(matches!(err, DalError::TransactionPooler { .. }), "{err:?}");
        assert!(err.to_string().contains("pgbouncer=true"), "{err}");
    } else {
        // Straight to the server (or on SQLite) each handle has its own
        // sessions: the same calls succeed.
        assert_eq!(first.unwrap().id, p.id);
        assert_eq!(second.unwrap().id, p.id);
    }
}

#[tokio::test]
async fn the_pooler_settings_are_read_from_the_url_and_checked() {
    let db = TestDb::new().await;
    // A setting of the other backend is refused before anything connects.
    let setting = match db.backend() {
        Backend::Postgres => "synchronous=full",
        Backend::Sqlite => "pgbouncer=true",
    };
    let sep = if db.url().contains('?') { '&' } else { '?' };
    let bad = format!("{}{sep}{setting}", db.url());
    let err = TaskExecutionDal::connect(&bad).await.unwrap_err();
    assert!(matches!(err, DalError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("applies to"), "{err}");
}

#[tokio::test]
async fn a_waiter_behind_a_pooler_listens_on_the_direct_listen_url() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    // Behind a pooler, wake-ups LISTEN on the direct connection; elsewhere
    // the setting changes nothing (SQLite ignores it).
    let config = DalConfig::new(db.url()).listen_url(db.direct_url());
    let waiter = TaskExecutionDal::connect_with(config).await.unwrap();
    let wait = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.wait_for_ready(Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    if db.backend() == Backend::Postgres {
        // The waiter's handle LISTENs on a session of its own.
        assert_eq!(listeners(&db).await, 1, "one LISTEN session");
    }
    let started = Instant::now();
    db.create(NewTaskExecution::new(p.id, "elsewhere").status(TaskStatus::Ready))
        .await
        .unwrap();
    assert!(wait.await.unwrap().unwrap(), "the waiter wakes");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the write, not by the timeout"
    );
}

/// The sessions on `db`'s database whose last statement was a `LISTEN`.
async fn listeners(db: &TestDb) -> i64 {
    count_of(
        db,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .await
}
