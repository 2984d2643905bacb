//! te-crud on the backend `TE_TEST_BACKEND` selects: creating, reading,
//! listing and updating pipeline and task executions, their audit events, and
//! every refusal (bad input, unknown ids, duplicates, missing pipelines)
//! leaving the database untouched.

use diesel::prelude::*;
use serde_json::{Value, json};
use te_core::schema::contexts;
use te_core::toolkit::bind;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    RowCounts, assert_empty, assert_invalid, assert_not_found, events, pipeline, row_counts,
};

#[tokio::test]
async fn creates_and_reads_a_pipeline_execution_with_its_context_and_event() {
    let db = TestDb::new().await;
    let mut new = NewPipelineExecution::new("etl").context(json!({"input": [1, 2], "name": "Zoë"}));
    new.pipeline_version = "2.0".into();
    new.status = PipelineStatus::Pending;
    let created = db.create_pipeline_execution(new).await.unwrap();
    assert_eq!(created.pipeline_name, "etl");
    assert_eq!(created.pipeline_version, "2.0");
    assert_eq!(created.status, PipelineStatus::Pending);
    assert_eq!(created.recovery_attempts, 0);
    assert_eq!(created.completed_at, None);
    assert_eq!(
        db.get_pipeline_execution(created.id).await.unwrap(),
        created
    );

    let context_id = created.context_id.expect("a non-empty context is stored");
    let stored = db
        .run(move |conn| {
            Ok(contexts::table
                .find(bind::id(context_id))
                .select(contexts::value)
                .first::<Value>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored, json!({"input": [1, 2], "name": "Zoë"}));

    let log = events(&db, None, None).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event_type, EventType::PipelineCreated);
    assert_eq!(log[0].pipeline_execution_id, created.id);
    assert_eq!(log[0].task_execution_id, None);
    assert_eq!(log[0].event_data.as_ref().unwrap()["pipeline_name"], "etl");
}

#[tokio::test]
async fn an_absent_or_empty_context_stores_no_context_row() {
    let db = TestDb::new().await;
    let plain = db
        .create_pipeline_execution(NewPipelineExecution::new("a"))
        .await
        .unwrap();
    let empty = db
        .create_pipeline_execution(NewPipelineExecution::new("b").context(json!({})))
        .await
        .unwrap();
    assert_eq!(plain.context_id, None);
    assert_eq!(empty.context_id, None);
    assert_eq!(plain.status, PipelineStatus::Running);
    assert_eq!(plain.pipeline_version, "1.0");
    assert_eq!(
        row_counts(&db).await,
        RowCounts {
            pipelines: 2,
            events: 2,
            ..RowCounts::default()
        }
    );
}

#[tokio::test]
async fn invalid_pipeline_input_writes_nothing() {
    let db = TestDb::new().await;
    assert_invalid(
        db.create_pipeline_execution(NewPipelineExecution::new(" "))
            .await,
        "pipeline_name",
    );
    for bad in [json!([1]), json!("text"), json!(null), json!(3)] {
        let result = db
            .create_pipeline_execution(NewPipelineExecution::new("etl").context(bad))
            .await;
        assert_invalid(result, "context");
    }
    assert_eq!(row_counts(&db).await, RowCounts::default());
}

#[tokio::test]
async fn unknown_pipeline_is_not_found() {
    let db = TestDb::new().await;
    assert_not_found(
        db.get_pipeline_execution(Uuid::new_v4()).await,
        "pipeline execution",
    );
}

#[tokio::test]
async fn creates_a_task_with_defaults_and_one_event() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let before = te_core::toolkit::now();
    let task = db
        .create(NewTaskExecution::new(p.id, "extract"))
        .await
        .unwrap();
    assert_eq!(task.pipeline_execution_id, p.id);
    assert_eq!(task.task_name, "extract");
    assert_eq!(task.status, TaskStatus::NotStarted);
    assert_eq!(
        (task.attempt, task.max_attempts, task.recovery_attempts),
        (1, 1, 0)
    );
    assert_eq!(task.trigger_rules, json!({"type": "Always"}));
    assert_eq!(task.task_configuration, json!({}));
    assert!(task.created_at >= before);
    assert_eq!(task.created_at, task.updated_at);
    assert_eq!(task.claimed_by, None);
    assert_eq!(db.get_by_id(task.id).await.unwrap(), task);

    let log = events(&db, None, None).await;
    assert_eq!(log.len(), 2, "PipelineCreated, TaskCreated");
    assert_eq!(log[1].event_type, EventType::TaskCreated);
    assert_eq!(log[1].task_execution_id, Some(task.id));
    assert_eq!(log[1].pipeline_execution_id, p.id);
}

#[tokio::test]
async fn creates_a_task_with_explicit_fields() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let mut new = NewTaskExecution::new(p.id, "load")
        .max_attempts(4)
        .status(TaskStatus::Ready);
    new.attempt = 2;
    new.trigger_rules = json!({"type": "All", "of": ["a"]});
    new.task_configuration = json!({"batch": 10});
    let task = db.create(new).await.unwrap();
    let read = db.get_by_id(task.id).await.unwrap();
    assert_eq!(read, task);
    assert_eq!(
        (read.status, read.attempt, read.max_attempts),
        (TaskStatus::Ready, 2, 4)
    );
    assert_eq!(read.task_configuration, json!({"batch": 10}));
    assert_eq!(read.trigger_rules, json!({"type": "All", "of": ["a"]}));
}

#[tokio::test]
async fn duplicate_task_name_is_a_conflict_and_writes_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    db.create(NewTaskExecution::new(p.id, "a")).await.unwrap();
    let before = row_counts(&db).await;
    let dup = db.create(NewTaskExecution::new(p.id, "a")).await;
    assert!(matches!(dup, Err(DalError::Conflict { .. })), "{dup:?}");
    assert_eq!(row_counts(&db).await, before);

    // The same name in another pipeline execution is fine.
    let other = pipeline(&db).await;
    db.create(NewTaskExecution::new(other.id, "a"))
        .await
        .unwrap();
}

#[tokio::test]
async fn task_for_a_missing_pipeline_is_not_found_and_writes_nothing() {
    let db = TestDb::new().await;
    let missing = Uuid::new_v4();
    match db.create(NewTaskExecution::new(missing, "a")).await {
        Err(DalError::NotFound { entity, key }) => {
            assert_eq!(entity, "pipeline execution");
            assert_eq!(key, missing.to_string());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(row_counts(&db).await, RowCounts::default());
}

#[tokio::test]
async fn invalid_task_input_names_the_field_and_writes_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let base = NewTaskExecution::new(p.id, "t");
    let cases: Vec<(NewTaskExecution, &str)> = vec![
        (NewTaskExecution::new(p.id, ""), "task_name"),
        (NewTaskExecution::new(p.id, "  "), "task_name"),
        (base.clone().max_attempts(0), "max_attempts"),
        (base.clone().max_attempts(-3), "max_attempts"),
        (
            NewTaskExecution {
                attempt: 0,
                ..base.clone()
            },
            "attempt",
        ),
        (
            NewTaskExecution {
                task_configuration: json!([1]),
                ..base.clone()
            },
            "task_configuration",
        ),
        (
            NewTaskExecution {
                task_configuration: json!("x"),
                ..base.clone()
            },
            "task_configuration",
        ),
        (
            NewTaskExecution {
                trigger_rules: Value::Null,
                ..base.clone()
            },
            "trigger_rules",
        ),
    ];
    let before = row_counts(&db).await;
    for (new, field) in cases {
        assert_invalid(db.create(new.clone()).await, field);
        assert_invalid(db.create_many(vec![base.clone(), new]).await, field);
    }
    assert_eq!(row_counts(&db).await, before);
}

#[tokio::test]
async fn unknown_task_is_not_found() {
    let db = TestDb::new().await;
    assert_not_found(db.get_by_id(Uuid::new_v4()).await, "task execution");
}

#[tokio::test]
async fn create_many_creates_all_in_order_with_an_event_each() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let names = ["extract", "transform", "load", "report"];
    let created = db
        .create_many(
            names
                .iter()
                .map(|n| NewTaskExecution::new(p.id, *n))
                .collect(),
        )
        .await
        .unwrap();
    let got: Vec<&str> = created.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(got, names, "returned in input order");
    for task in &created {
        assert_eq!(&db.get_by_id(task.id).await.unwrap(), task);
    }
    let mut expected = created.clone();
    expected.sort_by_key(|t| (t.created_at, t.id));
    assert_eq!(db.get_all_tasks_for_pipeline(p.id).await.unwrap(), expected);

    let log = events(&db, None, None).await;
    let created_events: Vec<Option<Uuid>> = log
        .iter()
        .filter(|e| e.event_type == EventType::TaskCreated)
        .map(|e| e.task_execution_id)
        .collect();
    assert_eq!(
        created_events,
        created.iter().map(|t| Some(t.id)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn create_many_of_nothing_returns_nothing() {
    let db = TestDb::new().await;
    assert!(db.create_many(Vec::new()).await.unwrap().is_empty());
    assert_eq!(row_counts(&db).await, RowCounts::default());
}

#[tokio::test]
async fn create_many_is_all_or_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    db.create(NewTaskExecution::new(p.id, "existing"))
        .await
        .unwrap();
    let before = row_counts(&db).await;
    let ok = |name: &str| NewTaskExecution::new(p.id, name);

    let bad_row = db.create_many(vec![ok("a"), ok("b"), ok("")]).await;
    assert_invalid(bad_row, "task_name");
    assert_eq!(row_counts(&db).await, before);

    let dup_in_batch = db.create_many(vec![ok("a"), ok("b"), ok("a")]).await;
    assert!(
        matches!(dup_in_batch, Err(DalError::Conflict { .. })),
        "{dup_in_batch:?}"
    );
    assert_eq!(row_counts(&db).await, before);

    let dup_existing = db.create_many(vec![ok("a"), ok("existing")]).await;
    assert!(
        matches!(dup_existing, Err(DalError::Conflict { .. })),
        "{dup_existing:?}"
    );
    assert_eq!(row_counts(&db).await, before);

    let missing = Uuid::new_v4();
    let orphan = db
        .create_many(vec![ok("a"), NewTaskExecution::new(missing, "x")])
        .await;
    match orphan {
        Err(DalError::NotFound { entity, key }) => {
            assert_eq!(entity, "pipeline execution");
            assert_eq!(key, missing.to_string());
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_all_tasks_for_pipeline(p.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn create_many_stores_more_rows_than_one_bind_list_holds() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    // More rows than one multi-row VALUES list holds
    // (te_core::toolkit::batch::rows_per_statement(20)): several statements
    // on SQLite, one array statement on PostgreSQL.
    let n = te_core::toolkit::batch::rows_per_statement(20) + 7;
    let created = db
        .create_many(
            (0..n)
                .map(|i| NewTaskExecution::new(p.id, format!("t{i}")))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(created.len(), n);
    assert_eq!(
        row_counts(&db).await,
        RowCounts {
            pipelines: 1,
            tasks: n as i64,
            events: n as i64 + 1,
            ..RowCounts::default()
        }
    );
    assert_eq!(db.get_all_tasks_for_pipeline(p.id).await.unwrap().len(), n);
}

#[tokio::test]
async fn lists_only_the_pipelines_own_tasks() {
    let db = TestDb::new().await;
    let a = pipeline(&db).await;
    let b = pipeline(&db).await;
    let a1 = db.create(NewTaskExecution::new(a.id, "one")).await.unwrap();
    let b1 = db.create(NewTaskExecution::new(b.id, "one")).await.unwrap();
    let a2 = db.create(NewTaskExecution::new(a.id, "two")).await.unwrap();
    assert_eq!(
        db.get_all_tasks_for_pipeline(a.id).await.unwrap(),
        vec![a1, a2]
    );
    assert_eq!(db.get_all_tasks_for_pipeline(b.id).await.unwrap(), vec![b1]);
    assert_empty(db.get_all_tasks_for_pipeline(Uuid::new_v4()).await);
}

#[tokio::test]
async fn update_task_changes_only_the_given_fields() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let task = db.create(NewTaskExecution::new(p.id, "t")).await.unwrap();

    let updated = db
        .update_task(
            task.id,
            TaskUpdate {
                max_attempts: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.max_attempts, 5);
    assert!(updated.updated_at >= task.updated_at);
    assert_eq!(
        TaskExecution {
            max_attempts: task.max_attempts,
            updated_at: task.updated_at,
            ..updated.clone()
        },
        task,
        "nothing else changed"
    );
    assert_eq!(db.get_by_id(task.id).await.unwrap(), updated);

    let update = TaskUpdate {
        max_attempts: None,
        trigger_rules: Some(json!({"type": "Never"})),
        task_configuration: Some(json!({"k": [1, {"n": null}]})),
        priority: Some(7),
        ..TaskUpdate::default()
    };
    let again = db.update_task(task.id, update).await.unwrap();
    assert_eq!(again.max_attempts, 5);
    assert_eq!(again.trigger_rules, json!({"type": "Never"}));
    assert_eq!(again.task_configuration, json!({"k": [1, {"n": null}]}));
    assert_eq!(again.priority, 7);
    assert_eq!(db.get_by_id(task.id).await.unwrap(), again);

    let untouched = db
        .update_task(task.id, TaskUpdate::default())
        .await
        .unwrap();
    assert_eq!(
        TaskExecution {
            updated_at: again.updated_at,
            ..untouched
        },
        again
    );

    let updates: Vec<Value> = events(&db, None, None)
        .await
        .into_iter()
        .filter(|e| e.event_type == EventType::TaskUpdated)
        .map(|e| {
            assert_eq!(e.task_execution_id, Some(task.id));
            e.event_data.unwrap()["fields"].clone()
        })
        .collect();
    assert_eq!(
        updates,
        vec![
            json!(["max_attempts"]),
            json!(["trigger_rules", "task_configuration", "priority"]),
            json!([])
        ]
    );
}

#[tokio::test]
async fn update_task_refuses_bad_input_and_unknown_ids() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    let task = db.create(NewTaskExecution::new(p.id, "t")).await.unwrap();
    let before = row_counts(&db).await;

    let cases = [
        (
            TaskUpdate {
                max_attempts: Some(0),
                ..Default::default()
            },
            "max_attempts",
        ),
        (
            TaskUpdate {
                task_configuration: Some(json!([])),
                ..Default::default()
            },
            "task_configuration",
        ),
        (
            TaskUpdate {
                trigger_rules: Some(Value::Null),
                ..Default::default()
            },
            "trigger_rules",
        ),
        (
            TaskUpdate {
                max_attempts: Some(2),
                task_configuration: Some(json!(1)),
                ..Default::default()
            },
            "task_configuration",
        ),
    ];
    for (update, field) in cases {
        assert_invalid(db.update_task(task.id, update).await, field);
    }
    assert_not_found(
        db.update_task(
            Uuid::new_v4(),
            TaskUpdate {
                max_attempts: Some(2),
                ..Default::default()
            },
        )
        .await,
        "task execution",
    );
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_by_id(task.id).await.unwrap(), task);
}

#[tokio::test]
async fn pipeline_status_moves_to_a_terminal_status_once_with_an_event() {
    let db = TestDb::new().await;
    let p = pipeline(&db).await;
    assert_eq!(p.status, PipelineStatus::Running);
    assert_eq!(p.completed_at, None);

    let failed = db
        .update_pipeline_status(p.id, PipelineStatus::Failed, Some("task load failed"))
        .await
        .unwrap();
    assert_eq!(failed.status, PipelineStatus::Failed);
    assert_eq!(failed.error_details.as_deref(), Some("task load failed"));
    assert!(failed.completed_at.is_some());
    assert!(failed.updated_at >= p.updated_at);
    assert_eq!(db.get_pipeline_execution(p.id).await.unwrap(), failed);

    let last = events(&db, None, None).await.pop().unwrap();
    assert_eq!(last.event_type, EventType::PipelineStatusChanged);
    assert_eq!(last.pipeline_execution_id, p.id);
    assert_eq!(last.task_execution_id, None);
    assert_eq!(
        last.event_data,
        Some(json!({"from": "Running", "to": "Failed"}))
    );

    // A terminal status is final: refused, nothing written.
    let before = row_counts(&db).await;
    match db
        .update_pipeline_status(p.id, PipelineStatus::Completed, None)
        .await
    {
        Err(err @ DalError::IllegalPipelineTransition { .. }) => {
            let DalError::IllegalPipelineTransition {
                pipeline_id,
                from,
                to,
                operation,
            } = &err
            else {
                unreachable!()
            };
            assert_eq!(
                (*pipeline_id, *from, *to, *operation),
                (
                    p.id,
                    PipelineStatus::Failed,
                    PipelineStatus::Completed,
                    PipelineOperation::SetStatus
                )
            );
            let message = err.to_string();
            assert!(
                message.contains("Failed") && message.contains("Completed"),
                "{message}"
            );
        }
        other => panic!("expected IllegalPipelineTransition, got {other:?}"),
    }
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_pipeline_execution(p.id).await.unwrap(), failed);

    assert_not_found(
        db.update_pipeline_status(Uuid::new_v4(), PipelineStatus::Completed, None)
            .await,
        "pipeline execution",
    );
}

#[tokio::test]
async fn a_pending_pipeline_starts_and_completes() {
    let db = TestDb::new().await;
    let mut new = NewPipelineExecution::new("etl");
    new.status = PipelineStatus::Pending;
    let p = db.create_pipeline_execution(new).await.unwrap();
    let running = db
        .update_pipeline_status(p.id, PipelineStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(
        (running.status, running.completed_at),
        (PipelineStatus::Running, None)
    );
    let done = db
        .update_pipeline_status(p.id, PipelineStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(done.status, PipelineStatus::Completed);
    assert!(done.completed_at.is_some());
    assert_eq!(done.error_details, None);
}

/// The event a creation records, as the DSL path (`record_events`) writes it.
fn creation_event_as_written(row: &TaskExecution, event: &ExecutionEvent) -> Value {
    json!({
        "pipeline": event.pipeline_execution_id == row.pipeline_execution_id,
        "task": event.task_execution_id == Some(row.id),
        "type": event.event_type.as_str(),
        "data": event.event_data,
        "runner": event.runner_id,
        "at": event.created_at == row.created_at,
    })
}

#[tokio::test]
async fn a_task_created_alone_is_stored_as_the_bulk_path_stores_it() {
    // `create` is a statement of its own on PostgreSQL (one round trip);
    // `create_many` and the fixtures insert through diesel's DSL. The same
    // task, every field set, is stored and logged the same way by each.
    let db = TestDb::new().await;
    let alone = pipeline(&db).await.id;
    let bulk = pipeline(&db).await.id;
    let given = |pipeline_id: Uuid| {
        let mut new = NewTaskExecution::new(pipeline_id, "ünïcode 'quoted' \"name\"")
            .status(TaskStatus::Ready)
            .priority(-7);
        new.attempt = 2;
        new.max_attempts = 5;
        new.trigger_rules = json!({"all": ["a", "b"], "n": 1.5});
        new.task_configuration = json!({"nested": {"deep": [null, true]}});
        new
    };
    let created = db.create(given(alone)).await.unwrap();
    let stored = db.get_by_id(created.id).await.unwrap();
    assert_eq!(stored, created);

    let in_bulk = db.create_many(vec![given(bulk)]).await.unwrap().remove(0);
    // The fixture inserts a row exactly as given, through the DSL.
    let mut fixture = created.clone();
    fixture.id = Uuid::new_v4();
    fixture.task_name = "fixture".into();
    db.insert_tasks(vec![fixture.clone()]).await;
    let comparable = |row: TaskExecution| TaskExecution {
        id: Uuid::nil(),
        pipeline_execution_id: Uuid::nil(),
        task_name: String::new(),
        created_at: created.created_at,
        updated_at: created.updated_at,
        ..row
    };
    assert_eq!(
        comparable(db.get_by_id(in_bulk.id).await.unwrap()),
        comparable(stored.clone())
    );
    assert_eq!(
        comparable(db.get_by_id(fixture.id).await.unwrap()),
        comparable(stored.clone())
    );

    let alone_events = events(&db, Some(created.id), None).await;
    let bulk_events = events(&db, Some(in_bulk.id), None).await;
    assert_eq!(alone_events.len(), 1, "{alone_events:?}");
    assert_eq!(bulk_events.len(), 1, "{bulk_events:?}");
    assert_eq!(
        creation_event_as_written(&created, &alone_events[0]),
        creation_event_as_written(&in_bulk, &bulk_events[0])
    );
    assert_eq!(
        alone_events[0].event_data,
        Some(json!({"task_name": created.task_name, "status": "Ready"}))
    );
    assert_eq!(alone_events[0].event_type, EventType::TaskCreated);
}

#[tokio::test]
async fn tasks_created_in_bulk_are_stored_as_the_dsl_stores_them() {
    // `create_many` is one array statement on PostgreSQL; the fixture
    // inserts through diesel's DSL. Rows of two pipelines, interleaved, every
    // field varied: each stored row is what the fixture stores, and the
    // events follow the input's order.
    let db = TestDb::new().await;
    let first = pipeline(&db).await.id;
    let second = pipeline(&db).await.id;
    let new: Vec<NewTaskExecution> = (0..7)
        .map(|i| {
            let mut task = NewTaskExecution::new(
                if i % 2 == 0 { first } else { second },
                format!("task {i} 'ü' \\\\ \"q\""),
            )
            .status(if i % 3 == 0 {
                TaskStatus::Ready
            } else {
                TaskStatus::NotStarted
            })
            .priority(i - 3);
            task.attempt = 1 + i % 2;
            task.max_attempts = 3 + i;
            task.trigger_rules = json!({"i": i, "list": [i, null]});
            task.task_configuration = json!({"deep": {"n": i}});
            task
        })
        .collect();
    let created = db.create_many(new).await.unwrap();
    assert_eq!(created.len(), 7);
    let mut fixtures = Vec::new();
    for row in &created {
        let stored = db.get_by_id(row.id).await.unwrap();
        assert_eq!(&stored, row);
        let mut fixture = row.clone();
        fixture.id = Uuid::new_v4();
        fixture.task_name = format!("fixture of {}", row.task_name);
        fixtures.push(fixture);
    }
    db.insert_tasks(fixtures.clone()).await;
    for (row, fixture) in created.iter().zip(&fixtures) {
        let mut from_dsl = db.get_by_id(fixture.id).await.unwrap();
        from_dsl.id = row.id;
        from_dsl.task_name = row.task_name.clone();
        assert_eq!(&from_dsl, row);
    }
    let logged: Vec<(Option<Uuid>, Option<Value>)> =
        events(&db, None, Some(EventType::TaskCreated))
            .await
            .into_iter()
            .map(|event| (event.task_execution_id, event.event_data))
            .collect();
    let expected: Vec<(Option<Uuid>, Option<Value>)> = created
        .iter()
        .map(|row| {
            (
                Some(row.id),
                Some(json!({"task_name": row.task_name, "status": row.status.as_str()})),
            )
        })
        .collect();
    assert_eq!(logged, expected);
}
