//! The per-task statements are prepared once per connection and reused: a
//! claim and a completion are parsed and planned by the database on their
//! first call only, and a reused claim still honours each call's limit.
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
    let p = pipeline(&dal).await;
    let limits = [1, 3, 2, 1, 4, 1, 3];
    create_ready(&dal, p.id, limits.iter().sum()).await;

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
    let claims = cached.iter().filter(|sql| sql.contains(CLAIM_MARK)).count();
    assert_eq!(claims, 1, "the claim is prepared once: {cached:#?}");
    if db.backend() == Backend::Postgres {
        // A completion and its event are one statement on PostgreSQL.
        let completions = cached
            .iter()
            .filter(|sql| sql.starts_with("WITH changed AS (UPDATE task_executions SET"))
            .count();
        assert_eq!(
            completions, 1,
            "the completion is prepared once: {cached:#?}"
        );
    }
}
