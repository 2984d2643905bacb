//! The pool survives what goes wrong underneath it: a query that panics, a
//! server that drops its connections, and a writer that holds the lock.

use std::time::Duration;

use diesel::prelude::*;
use te_core::schema::pipeline_executions;
use te_core::{
    AnyConnection, Backend, DalError, NewPipelineExecution, PipelineExecution, TaskExecutionDal,
};
use te_testkit::TestDb;

use crate::common::{handle_with_pool, terminate_backends};

fn count_pipelines(conn: &mut AnyConnection) -> Result<i64, DalError> {
    Ok(pipeline_executions::table.count().get_result(conn)?)
}

fn insert_pipeline(conn: &mut AnyConnection, row: PipelineExecution) -> Result<(), DalError> {
    diesel::insert_into(pipeline_executions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

#[tokio::test]
async fn a_panicking_query_is_an_error_and_the_pool_recovers() {
    let db = TestDb::new().await;
    let dal = handle_with_pool(&db, 1).await;
    let err = dal
        .run(|_conn| -> Result<(), DalError> { panic!("boom inside a query") })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DalError::Interrupted(te_core::Interruption::Panicked(_))
        ),
        "{err:?}"
    );
    // The only connection was poisoned; the pool replaces it.
    assert_eq!(dal.run(count_pipelines).await.unwrap(), 0);
}

#[tokio::test]
async fn dropped_server_connections_are_replaced() {
    let db = TestDb::new().await;
    let dal = handle_with_pool(&db, 2).await;
    assert_eq!(dal.run(count_pipelines).await.unwrap(), 0);
    match db.backend() {
        Backend::Postgres if db.through_pooler() => {
            // Behind a transaction-mode pooler, the server connections are
            // the pooler's: it replaces those that die between
            // transactions, and the handle never notices.
            terminate_backends(&db).await;
            for _ in 0..4 {
                assert_eq!(dal.run(count_pipelines).await.unwrap(), 0);
            }
            return;
        }
        Backend::Postgres => {
            // Terminate every other session on this database, as a server
            // restart or a network cut would.
            let killed = terminate_backends(&db).await;
            assert!(killed >= 1, "the other handle's connection was terminated");
        }
        Backend::Sqlite => {
            // A file connection cannot be cut; closing the pool's idle
            // connections is the nearest equivalent.
            dal.pool().retain(|_, _| false);
        }
    }
    // Connections are not pinged when handed out: each dropped one fails
    // the one call that finds it, with an error saying so, and is discarded;
    // then the pool makes new ones.
    let mut lost = 0;
    loop {
        match dal.run(count_pipelines).await {
            Ok(n) => break assert_eq!(n, 0),
            Err(err) => {
                assert!(err.is_connection_lost(), "{err:?}");
                lost += 1;
                assert!(lost <= 2, "more failures than pooled connections");
            }
        }
    }
    assert_eq!(dal.run(count_pipelines).await.unwrap(), 0);
    assert_eq!(dal.run(count_pipelines).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_waits_for_the_first_instead_of_failing() {
    let db = TestDb::new().await;
    let other = TaskExecutionDal::connect(db.url()).await.unwrap();
    let now = te_core::toolkit::now();
    let row = |name: &str| NewPipelineExecution::new(name).into_row(None, now);
    let (first_row, second_row) = (row("first"), row("second"));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let first = db.write(move |conn| {
        insert_pipeline(conn, first_row)?;
        let _ = started_tx.send(());
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    });
    let second = async move {
        started_rx.await.unwrap();
        other
            .write(move |conn| insert_pipeline(conn, second_row))
            .await
    };
    let (a, b) = tokio::join!(first, second);
    a.unwrap();
    b.unwrap();
    assert_eq!(db.run(count_pipelines).await.unwrap(), 2);
}
