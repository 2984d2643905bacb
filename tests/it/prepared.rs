//! The per-task statements are prepared once per connection and reused: a
//! claim and a completion are parsed and planned by the database on their
//! first call only (and on SQLite the event insert too), and a reused claim
//! still honours each call's limit.
//! Observed with diesel's per-connection instrumentation, which reports each
//! statement it adds to the connection's prepared-statement cache.

use std::sync::{Arc, Mutex};

use diesel::connection::{Connection, InstrumentationEvent};
use te_testkit::TestDb;

use task_execution_dal::prelude::*;

use crate::common::{create_ready, pipeline};

/// The claims of both backends set this; no other statement does.
const CLAIM_MARK: &str = "SET status = 'Running'";

#[tokio::test]
async fn claims_and_completions_are_prepared_once_per_connection() {
    let db = TestDb::new().await;
    // One pooled connection, so every call below runs on it.
    let dal = TaskExecutionDal::connect_with(DalConfig::new(db.url()).max_connections(1))
        .await
        .unwrap();
    let cached = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&cached);
    dal.run(move |conn| {
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                sink.lock().unwrap().push(sql.to_owned());
            }
        });
        Ok(())
    })
    .await
    .unwrap();

    let p = pipeline(&dal).await;
    let limits = [1, 3, 2, 1, 4, 1, 3];
    create_ready(&dal, p.id, limits.iter().sum()).await;

    for limit in limits {
        let claimed = dal.claim_ready_task(limit).await.unwrap();
        assert_eq!(
            claimed.len(),
            limit,
            "a reused claim takes the limit of its call"
        );
        for task in claimed {
            assert!(dal.mark_completed(task.id, None).await.unwrap());
        }
    }
    assert!(dal.claim_ready_task(1).await.unwrap().is_empty());
    let counts = dal.count_tasks_by_status(Some(p.id)).await.unwrap();
    assert_eq!(
        counts[&TaskStatus::Completed],
        limits.iter().sum::<usize>() as i64
    );

    let cached = cached.lock().unwrap().clone();
    if db.through_pooler() {
        // Behind a transaction-mode pooler nothing is prepared by name: a
        // named statement would exist on one server connection only.
        assert!(cached.is_empty(), "nothing is prepared: {cached:#?}");
        return;
    }
    let count = |matches: &dyn Fn(&str) -> bool| cached.iter().filter(|sql| matches(sql)).count();
    // PostgreSQL claims one task with a statement of its own (its limit
    // written as a constant, so that its plan is reused too).
    let claims = match db.backend() {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    };
    assert_eq!(
        count(&|sql| sql.contains(CLAIM_MARK)),
        claims,
        "each claim statement is prepared once: {cached:#?}"
    );
    // A completion (with its event, in the same statement on PostgreSQL).
    assert_eq!(
        count(&|sql| sql.contains("UPDATE task_executions SET") && !sql.contains(CLAIM_MARK)),
        1,
        "the completion is prepared once: {cached:#?}"
    );
    if db.backend() == Backend::Sqlite {
        // SQLite writes each event with its own insert.
        assert_eq!(
            count(&|sql| sql.starts_with("INSERT INTO execution_events")),
            1,
            "the event insert is prepared once: {cached:#?}"
        );
    }
}
