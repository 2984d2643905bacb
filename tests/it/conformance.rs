//! Conformance of te-core on the backend `TE_TEST_BACKEND` selects: connecting,
//! migrating, round-tripping every column type, and mapping errors.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use serde_json::json;
use te_core::schema::{
    contexts, execution_events, pipeline_executions, task_execution_metadata, task_executions,
};
use te_core::toolkit::bind;
use te_testkit::{TestDb, backend_from_env};
use uuid::Uuid;

use task_execution_dal::prelude::*;

/// Inserts one task row through the DAL's connection, as the operations
/// do, returning what the database says.
async fn insert_task(db: &TestDb, row: TaskExecution) -> Result<(), DalError> {
    db.write(move |conn| {
        diesel::insert_into(task_executions::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn connects_to_the_selected_backend_and_migrates_twice() {
    let db = TestDb::unmigrated_on(backend_from_env()).await;
    assert_eq!(db.backend(), backend_from_env());
    assert_eq!(
        db.migrate().await.unwrap(),
        crate::common::migration_count(db.backend()),
        "first run applies every migration"
    );
    assert_eq!(db.migrate().await.unwrap(), 0, "second run applies nothing");
    db.run_migrations().await.unwrap();
}

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    let db = TestDb::new().await;
    assert_eq!(
        db.revert_migrations().await.unwrap(),
        crate::common::migration_count(db.backend())
    );
    let gone = db
        .run(|conn| {
            Ok(task_executions::table
                .count()
                .get_result::<i64>(conn)
                .is_err())
        })
        .await
        .unwrap();
    assert!(gone, "down.sql drops the tables");
    assert_eq!(
        db.migrate().await.unwrap(),
        crate::common::migration_count(db.backend())
    );
    let count = db
        .run(|conn| Ok(task_executions::table.count().get_result::<i64>(conn)?))
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn concurrent_migrations_from_two_handles_both_succeed() {
    let db = TestDb::unmigrated_on(backend_from_env()).await;
    let other = TaskExecutionDal::connect(db.url()).await.unwrap();
    let (a, b) = tokio::join!(db.migrate(), other.migrate());
    assert_eq!(
        a.unwrap() + b.unwrap(),
        crate::common::migration_count(db.backend()),
        "exactly one caller applies each migration"
    );
}

#[tokio::test]
async fn every_column_type_round_trips() {
    let db = TestDb::new().await;
    // Microsecond precision, far past and future, unicode and nested JSON, NULLs.
    let t0 =
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(123_456);
    let t1 = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap() + Duration::microseconds(1);
    let context_value =
        json!({"név": "Zoë 🚀", "nested": {"list": [1, 2.5, null, "ß"]}, "empty": {}});
    let context_id = Uuid::new_v4();
    let cv = context_value.clone();
    db.write(move |conn| {
        diesel::insert_into(contexts::table)
            .values((
                contexts::id.eq(bind::id(context_id)),
                contexts::value.eq(bind::json(cv)),
                contexts::created_at.eq(bind::ts(t0)),
                contexts::updated_at.eq(bind::ts(t1)),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await
    .unwrap();
    let (id, value, created, updated) = db
        .run(move |conn| {
            Ok(contexts::table
                .find(bind::id(context_id))
                .select((
                    contexts::id,
                    contexts::value,
                    contexts::created_at,
                    contexts::updated_at,
                ))
                .first::<(Uuid, serde_json::Value, DateTime<Utc>, DateTime<Utc>)>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(
        (id, value, created, updated),
        (context_id, context_value, t0, t1)
    );

    let mut pipeline = NewPipelineExecution::new("etl").into_row(Some(context_id), t0);
    pipeline.pipeline_version = "2.1".into();
    pipeline.completed_at = Some(t1);
    pipeline.error_details = Some("😱 boom".into());
    pipeline.last_recovery_at = Some(t1);
    pipeline.recovery_attempts = 3;
    let pid = db.insert_pipeline(pipeline.clone()).await;

    let mut task = NewTaskExecution::new(pid, "extract ✓").into_row(t0);
    task.status = TaskStatus::Running;
    task.sub_status = Some(SubStatus::Deferred);
    task.started_at = Some(t0);
    task.retry_at = Some(t1);
    task.claimed_by = Some(Uuid::new_v4());
    task.heartbeat_at = Some(t1);
    task.task_configuration = json!({"retries": {"backoff": "exp"}, "ключ": true});
    task.last_error = Some("timeout".into());
    task.max_attempts = 5;
    task.attempt = 2;
    insert_task(&db, task.clone()).await.unwrap();
    let tid = task.id;

    let metadata = TaskExecutionMetadata {
        id: Uuid::new_v4(),
        task_execution_id: tid,
        pipeline_execution_id: pid,
        task_name: task.task_name.clone(),
        context_id: Some(context_id),
        created_at: t0,
        updated_at: t1,
    };
    let m = metadata.clone();
    db.write(move |conn| te_testkit::insert_metadata(conn, &[m]))
        .await
        .unwrap();
    let (read_pipeline, read_task, read_metadata) = db
        .run(move |conn| {
            let pipeline = pipeline_executions::table
                .find(bind::id(pid))
                .select(PipelineExecution::as_select())
                .first(conn)?;
            let task = task_executions::table
                .find(bind::id(tid))
                .select(TaskExecution::as_select())
                .first(conn)?;
            let metadata = task_execution_metadata::table
                .select(TaskExecutionMetadata::as_select())
                .first(conn)?;
            Ok((pipeline, task, metadata))
        })
        .await
        .unwrap();
    assert_eq!(read_pipeline, pipeline);
    assert_eq!(read_task, task);
    assert_eq!(read_metadata, metadata);

    let runner = Uuid::new_v4();
    let events = vec![
        te_core::toolkit::NewEvent::task(pid, tid, EventType::TaskCreated, t0),
        te_core::toolkit::NewEvent::task(pid, tid, EventType::TaskFailed, t1)
            .data(json!({"error": "ünïcode"}))
            .runner(Some(runner)),
    ];
    let written = events.clone();
    db.write(move |conn| te_core::toolkit::record_events(conn, &written))
        .await
        .unwrap();
    let read = db
        .run(|conn| {
            Ok(execution_events::table
                .order(execution_events::sequence)
                .select(ExecutionEvent::as_select())
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[0].sequence < read[1].sequence);
    for (got, want) in read.iter().zip(&events) {
        assert_eq!(got.id, want.id);
        assert_eq!(got.event_type, want.event_type);
        assert_eq!(got.event_data, want.event_data);
        assert_eq!(got.runner_id, want.runner_id);
        assert_eq!(got.task_execution_id, Some(tid));
        assert_eq!(got.created_at, want.created_at);
    }
}

#[tokio::test]
async fn timestamps_order_to_the_microsecond() {
    let db = TestDb::new().await;
    let base = te_core::toolkit::now();
    let pid = db.insert_new_pipeline("etl").await;
    // Inserted out of order, one microsecond apart.
    for offset in [3i64, 1, 2, 0] {
        let row = NewTaskExecution::new(pid, format!("t{offset}"))
            .into_row(base + Duration::microseconds(offset));
        insert_task(&db, row).await.unwrap();
    }
    let cutoff = base + Duration::microseconds(2);
    let (ordered, before) = db
        .run(move |conn| {
            let ordered = task_executions::table
                .order(task_executions::created_at)
                .select(task_executions::task_name)
                .load::<String>(conn)?;
            let before = task_executions::table
                .filter(task_executions::created_at.lt(bind::ts(cutoff)))
                .count()
                .get_result::<i64>(conn)?;
            Ok((ordered, before))
        })
        .await
        .unwrap();
    assert_eq!(ordered, ["t0", "t1", "t2", "t3"]);
    assert_eq!(before, 2);
}

#[tokio::test]
async fn id_lists_bind_every_element() {
    let db = TestDb::new().await;
    let now = te_core::toolkit::now();
    let pid = db.insert_new_pipeline("etl").await;
    let rows: Vec<TaskExecution> = (0..5)
        .map(|i| NewTaskExecution::new(pid, format!("t{i}")).into_row(now))
        .collect();
    let wanted = vec![rows[1].id, rows[3].id, Uuid::new_v4()];
    db.insert_tasks(rows).await;
    let found = db
        .run(move |conn| {
            Ok(task_executions::table
                .filter(task_executions::id.eq_any(bind::ids(&wanted)))
                .order(task_executions::task_name)
                .select(task_executions::task_name)
                .load::<String>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(found, ["t1", "t3"]);
}

#[tokio::test]
async fn constraint_violations_map_to_dal_errors() {
    let db = TestDb::new().await;
    let now = te_core::toolkit::now();
    let pid = db.insert_new_pipeline("etl").await;
    insert_task(&db, NewTaskExecution::new(pid, "a").into_row(now))
        .await
        .unwrap();

    let dup = insert_task(&db, NewTaskExecution::new(pid, "a").into_row(now)).await;
    assert!(matches!(dup, Err(DalError::Conflict { .. })), "{dup:?}");

    let orphan = insert_task(
        &db,
        NewTaskExecution::new(Uuid::new_v4(), "b").into_row(now),
    )
    .await;
    let err = orphan.unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err:?}");

    let mut bad_status = NewTaskExecution::new(pid, "c").into_row(now);
    bad_status.max_attempts = 0;
    let err = insert_task(&db, bad_status).await.unwrap_err();
    assert!(matches!(err, DalError::Database(_)), "{err:?}");

    let missing = db
        .run(|conn| {
            Ok(task_executions::table
                .find(bind::id(Uuid::new_v4()))
                .select(TaskExecution::as_select())
                .first(conn)?)
        })
        .await;
    assert!(
        matches!(missing, Err(DalError::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_give_clear_errors() {
    let err = TaskExecutionDal::connect("mysql://root:hunter2@localhost/x")
        .await
        .unwrap_err();
    assert!(matches!(err, DalError::Config(_)));
    let text = err.to_string();
    assert!(
        text.contains("mysql://") && !text.contains("hunter2"),
        "{text}"
    );

    // Nothing listens on port 1.
    let err = TaskExecutionDal::connect("postgres://u:secret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DalError::Connection { .. }), "{err:?}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("secret"), "{text}");

    let err = TaskExecutionDal::connect("sqlite:///nonexistent-dir/for/sure/x.db")
        .await
        .unwrap_err();
    assert!(matches!(err, DalError::Connection { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent-dir/for/sure/x.db"),
        "{err}"
    );
}
