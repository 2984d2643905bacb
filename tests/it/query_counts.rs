//! How many statements the read paths of te-queries and te-context issue, on
//! the backend `TE_TEST_BACKEND` selects: counted with diesel's per-connection
//! instrumentation while the function each trait method runs is called on
//! one connection.
//!
//! `get_retry_stats` and the batch loaders must issue ONE statement however
//! many inputs they get (up to `MAX_IN_LIST`), never one per item.

use std::sync::{Arc, Mutex};

use diesel::connection::{Connection, InstrumentationEvent};
use serde_json::json;
use te_core::AnyConnection;
use te_core::toolkit::batch::MAX_IN_LIST;
use te_core::toolkit::write_transaction;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

/// Runs `f` on `conn` and returns its result with the SQL of every statement
/// it started.
fn statements<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, DalError>,
) -> Result<(T, Vec<String>), DalError> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            sink.lock().unwrap().push(query.to_string());
        }
    });
    let result = f(conn);
    conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    Ok((result?, seen))
}

/// A pipeline of `n` tasks named `task-00000`…: attempts cycle 1..=3 against
/// `max_attempts` 2, statuses cycle through every status, and every other
/// task has a saved context `{"i": i}`.
async fn fixture(db: &TestDb, n: usize) -> (Uuid, Vec<TaskExecution>) {
    let now = te_core::toolkit::now();
    let pipeline_id = db
        .insert_pipeline(NewPipelineExecution::new("etl").into_row(None, now))
        .await;
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let mut row = NewTaskExecution::new(pipeline_id, format!("task-{i:05}"))
                .status(TaskStatus::ALL[i % TaskStatus::ALL.len()])
                .max_attempts(2)
                .into_row(now);
            row.attempt = (i % 3) as i32 + 1;
            row
        })
        .collect();
    db.insert_tasks(rows.clone()).await;
    let saved: Vec<_> = rows.iter().step_by(2).map(|t| t.id).collect();
    db.run(move |conn| {
        write_transaction(conn, |conn| {
            for (i, task) in saved.iter().enumerate() {
                te_context::queries::save_task_context(conn, *task, &json!({ "i": i * 2 }))?;
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    (pipeline_id, rows)
}

/// Runs `f` on one pooled connection of `db`; returns its result with the
/// SQL of every statement it started.
async fn counted<T: Send + 'static>(
    db: &TestDb,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, DalError> + Send + 'static,
) -> (T, Vec<String>) {
    db.run(move |conn| statements(conn, f)).await.unwrap()
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("task-{i:05}")).collect()
}

#[tokio::test]
async fn retry_stats_is_one_aggregate_statement() {
    let db = TestDb::new().await;
    let (pipeline_id, rows) = fixture(&db, 300).await;
    let (stats, sql) = counted(&db, move |conn| {
        te_queries::queries::retry_stats(conn, pipeline_id)
    })
    .await;
    assert_eq!(sql.len(), 1, "{sql:#?}");
    assert!(
        sql[0].contains("SUM(") && sql[0].contains("MAX("),
        "{}",
        sql[0]
    );
    assert_eq!(
        stats,
        RetryStats {
            tasks_with_retries: rows.iter().filter(|t| t.attempt > 1).count() as i64,
            total_retries: rows.iter().map(|t| i64::from(t.attempt - 1)).sum(),
            max_attempts_used: 3,
            tasks_exhausted_retries: rows
                .iter()
                .filter(|t| t.status == TaskStatus::Failed && t.attempt >= t.max_attempts)
                .count() as i64,
        }
    );
    // The trait method returns the same, through its own connection.
    assert_eq!(db.get_retry_stats(pipeline_id).await.unwrap(), stats);
}

#[tokio::test]
async fn status_batches_are_one_statement_per_in_list() {
    let db = TestDb::new().await;
    let (pipeline_id, rows) = fixture(&db, 700).await;
    let (other, _) = fixture(&db, 3).await;

    // Few names: looked up by name.
    let (statuses, sql) = counted(&db, move |conn| {
        te_queries::queries::task_statuses_batch(conn, pipeline_id, names(100))
    })
    .await;
    assert_eq!(sql.len(), 1, "100 names: one statement");
    assert!(!sql[0].contains("LIMIT"), "by name: {}", sql[0]);
    assert_eq!(statuses.len(), 100);

    // Many names of a pipeline not much larger: the pipeline is read once.
    for n in [10_000, 100_000] {
        let (statuses, sql) = counted(&db, move |conn| {
            te_queries::queries::task_statuses_batch(conn, pipeline_id, names(n))
        })
        .await;
        assert_eq!(sql.len(), 1, "{n} names: one statement");
        assert!(
            sql[0].contains("LIMIT"),
            "the pipeline, bounded: {}",
            sql[0]
        );
        assert_eq!(statuses.len(), rows.len());
    }

    // 300 names of 700 tasks: the bounded read finds more than twice as
    // many tasks, then one IN list.
    let (statuses, sql) = counted(&db, move |conn| {
        te_queries::queries::task_statuses_batch(conn, pipeline_id, names(300))
    })
    .await;
    assert_eq!(sql.len(), 2, "300 names of 700 tasks: {sql:?}");
    assert_eq!(statuses.len(), 300);

    // Looked up by name, 100,000 names take one statement per IN list.
    let (statuses, sql) = counted(&db, move |conn| {
        te_queries::queries::task_statuses_by_name(conn, pipeline_id, &names(100_000))
    })
    .await;
    assert_eq!(
        sql.len(),
        100_000_usize.div_ceil(MAX_IN_LIST),
        "100,000 names: a few statements"
    );
    assert_eq!(statuses.len(), rows.len());

    let (all, sql) = counted(&db, move |conn| {
        te_queries::queries::all_task_statuses_for_pipelines(
            conn,
            vec![pipeline_id, other, Uuid::new_v4()],
        )
    })
    .await;
    assert_eq!(sql.len(), 1);
    assert_eq!(
        (all[&pipeline_id].len(), all[&other].len()),
        (rows.len(), 3)
    );

    let (pending, sql) = counted(&db, move |conn| {
        te_queries::queries::pending_tasks_batch(conn, vec![pipeline_id, other])
    })
    .await;
    assert_eq!(sql.len(), 1);
    assert!(!pending.is_empty());

    let (_, sql) = counted(&db, move |conn| {
        te_queries::queries::pending_tasks_batch(conn, Vec::new())
    })
    .await;
    assert!(sql.is_empty(), "an empty input issues no statement");
}

#[tokio::test]
async fn single_reads_are_one_statement_each() {
    let db = TestDb::new().await;
    let (pipeline_id, rows) = fixture(&db, 60).await;
    let cursor = rows[9].id;
    let counts = db
        .run(move |conn| {
            use te_queries::queries as q;
            let filter = te_queries::TaskFilter {
                pipeline_execution_id: Some(pipeline_id),
                statuses: vec![TaskStatus::Ready, TaskStatus::Failed],
                after: Some(cursor),
                limit: 5,
                ..Default::default()
            };
            let counts = vec![
                (
                    "completion",
                    statements(conn, |c| q::pipeline_completion(c, pipeline_id))?.1,
                ),
                (
                    "failure",
                    statements(conn, |c| q::pipeline_failure(c, pipeline_id))?.1,
                ),
                (
                    "by status",
                    statements(conn, |c| q::count_tasks_by_status(c, Some(pipeline_id)))?.1,
                ),
                ("running", statements(conn, q::count_running_tasks)?.1),
                (
                    "task status",
                    statements(conn, |c| q::task_status(c, pipeline_id, "task-00001"))?.1,
                ),
                (
                    "list page",
                    statements(conn, |c| q::list_tasks(c, &filter))?.1,
                ),
            ];
            Ok(counts)
        })
        .await
        .unwrap();
    for (what, sql) in &counts {
        assert_eq!(sql.len(), 1, "{what}: {sql:#?}");
    }
    assert!(counts[2].1[0].contains("GROUP BY"), "{}", counts[2].1[0]);
    assert!(!counts[5].1[0].contains("OFFSET"), "{}", counts[5].1[0]);
}

#[tokio::test]
async fn context_batch_loaders_are_one_joined_statement() {
    let db = TestDb::new().await;
    let (pipeline_id, rows) = fixture(&db, 400).await;
    let with_context = rows.len().div_ceil(2);

    let (loaded, sql) = counted(&db, move |conn| {
        te_context::queries::task_contexts_batch(conn, pipeline_id, &names(10_000))
    })
    .await;
    assert_eq!(sql.len(), 1, "{sql:#?}");
    assert!(sql[0].contains("JOIN"), "{}", sql[0]);
    assert_eq!(loaded.len(), with_context);
    assert_eq!(loaded["task-00010"], json!({"i": 10}));

    let (metadata, sql) = counted(&db, move |conn| {
        te_context::queries::dependency_metadata_with_contexts(conn, pipeline_id, &names(10_000))
    })
    .await;
    assert_eq!(sql.len(), 1, "{sql:#?}");
    assert!(
        sql[0].contains("LEFT OUTER JOIN") || sql[0].contains("LEFT JOIN"),
        "{}",
        sql[0]
    );
    assert_eq!(metadata.len(), with_context);

    let (merged, sql) = counted(&db, move |conn| {
        te_context::queries::dependency_context(conn, pipeline_id, &names(10_000))
    })
    .await;
    assert_eq!(sql.len(), 1, "{sql:#?}");
    assert_eq!(merged, json!({"i": (rows.len() - 1) / 2 * 2}));

    let task = rows[4].id;
    let (context, sql) = counted(&db, move |conn| {
        te_context::queries::load_task_context(conn, task)
    })
    .await;
    assert_eq!(sql.len(), 1, "{sql:#?}");
    assert_eq!(context, Some(json!({"i": 4})));

    let (_, sql) = counted(&db, move |conn| {
        te_context::queries::task_contexts_batch(conn, pipeline_id, &[])
    })
    .await;
    assert!(sql.is_empty(), "an empty input issues no statement");
}
