//! te-context on the backend `TE_TEST_BACKEND` selects: contexts, saving and
//! loading task contexts (one and many), dependency metadata, merging
//! dependency contexts in order, undecodable stored contexts, and concurrent
//! saves of one task's context.
//!
//! Fixtures are written straight into the tables with explicit statuses.

use std::collections::HashMap;

use chrono::DateTime;
use chrono::Utc;
use diesel::prelude::*;
use serde_json::{Value, json};
use te_core::schema::{execution_events, pipeline_executions};
use te_core::toolkit::bind;
use te_core::{AnyConnection, Backend};
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    RowCounts, assert_empty, assert_not_found, count_events, event_types, row_counts, task_rows,
};

/// The tasks of the fixture DAG and their statuses: extract_a, extract_b ->
/// validate -> transform -> enrich -> load -> report -> notify; archive and
/// cleanup to the side.
const DAG: [(&str, TaskStatus); 10] = [
    ("extract_a", TaskStatus::Completed),
    ("extract_b", TaskStatus::Completed),
    ("validate", TaskStatus::Completed),
    ("transform", TaskStatus::Completed),
    ("enrich", TaskStatus::Running),
    ("load", TaskStatus::Ready),
    ("report", TaskStatus::NotStarted),
    ("notify", TaskStatus::NotStarted),
    ("archive", TaskStatus::Skipped),
    ("cleanup", TaskStatus::Failed),
];

/// Inserts a pipeline execution with `context` as its initial context row.
async fn pipeline_with_context(db: &TestDb, context: Value) -> Uuid {
    let now = te_core::toolkit::now();
    let context_id = db
        .write(move |conn| te_core::toolkit::insert_context(conn, &context, now))
        .await
        .unwrap();
    db.insert_pipeline(NewPipelineExecution::new("etl").into_row(Some(context_id), now))
        .await
}

/// A metadata row linking the task `task_id`, named `task_name`, to
/// `context_id`, stamped `now`.
fn metadata_row(
    pipeline_id: Uuid,
    task_id: Uuid,
    task_name: &str,
    context_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> TaskExecutionMetadata {
    TaskExecutionMetadata {
        id: te_core::toolkit::new_id(),
        task_execution_id: task_id,
        pipeline_execution_id: pipeline_id,
        task_name: task_name.to_owned(),
        context_id,
        created_at: now,
        updated_at: now,
    }
}

/// The DAG pipeline (with an initial context); returns its id and task ids by name.
async fn dag(db: &TestDb) -> (Uuid, HashMap<String, Uuid>) {
    let pipeline_id = pipeline_with_context(db, json!({"run": "nightly", "tags": ["etl"]})).await;
    let now = te_core::toolkit::now();
    let rows: Vec<_> = DAG
        .iter()
        .map(|(name, status)| {
            NewTaskExecution::new(pipeline_id, *name)
                .status(*status)
                .into_row(now)
        })
        .collect();
    let ids = rows.iter().map(|t| (t.task_name.clone(), t.id)).collect();
    db.insert_tasks(rows).await;
    (pipeline_id, ids)
}

/// The DAG pipeline with the task contexts of `saved`, a JSON object from
/// task name to context, saved through the DAL in the object's order.
async fn dag_with_contexts(db: &TestDb, saved: &Value) -> (Uuid, HashMap<String, Uuid>) {
    let (pipeline_id, tasks) = dag(db).await;
    for (name, value) in saved.as_object().expect("task names and contexts") {
        db.save_task_context(tasks[name], value).await.unwrap();
    }
    (pipeline_id, tasks)
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The merged context of the dependencies `deps` of `pipeline_id`, which
/// must load.
async fn merged_context(db: &TestDb, pipeline_id: Uuid, deps: &[&str]) -> Value {
    db.load_dependency_context(pipeline_id, &names(deps))
        .await
        .unwrap()
}

#[tokio::test]
async fn contexts_are_created_read_updated_and_deleted() {
    let db = TestDb::new().await;

    assert_eq!(db.create_context(&json!({})).await.unwrap(), None);
    assert_eq!(
        row_counts(&db).await,
        RowCounts::default(),
        "an empty context writes nothing"
    );
    for bad in [json!([1, 2]), json!("text"), json!(null), json!(3)] {
        let err = db.create_context(&bad).await.unwrap_err();
        assert!(
            matches!(err, DalError::InvalidInput { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(row_counts(&db).await, RowCounts::default());

    let value = json!({"user": {"id": 7, "roles": ["admin"]}, "ünï": "çødé"});
    let id = db.create_context(&value).await.unwrap().expect("stored");
    assert_eq!(db.read_context(id).await.unwrap(), value);

    let newer = json!({"replaced": true});
    db.update_context(id, &newer).await.unwrap();
    assert_eq!(db.read_context(id).await.unwrap(), newer);
    let err = db.update_context(id, &json!(["no"])).await.unwrap_err();
    assert!(matches!(err, DalError::InvalidInput { .. }), "{err:?}");
    assert_eq!(
        db.read_context(id).await.unwrap(),
        newer,
        "a refused update changes nothing"
    );
    db.update_context(id, &json!({})).await.unwrap();
    assert_eq!(db.read_context(id).await.unwrap(), json!({}));

    let unknown = Uuid::new_v4();
    assert!(db.read_context(unknown).await.unwrap_err().is_not_found());
    assert_not_found(db.update_context(unknown, &newer).await, "context");
    assert!(db.delete_context(unknown).await.unwrap_err().is_not_found());

    db.delete_context(id).await.unwrap();
    assert!(db.read_context(id).await.unwrap_err().is_not_found());
    assert!(db.delete_context(id).await.unwrap_err().is_not_found());
    assert_eq!(row_counts(&db).await, RowCounts::default());
}

#[tokio::test]
async fn saving_a_task_context_twice_replaces_it_in_place() {
    let db = TestDb::new().await;
    let (pipeline_id, tasks) = dag(&db).await;
    let task = tasks["extract_a"];
    let contexts_before = row_counts(&db).await.contexts;

    assert_eq!(
        db.load_task_context(task).await.unwrap(),
        None,
        "nothing saved yet"
    );

    let first = db
        .save_task_context(task, &json!({"rows": 10}))
        .await
        .unwrap();
    assert_eq!(
        db.load_task_context(task).await.unwrap(),
        Some(json!({"rows": 10}))
    );
    assert_eq!(db.read_context(first).await.unwrap(), json!({"rows": 10}));

    let second = db
        .save_task_context(task, &json!({"rows": 12, "late": true}))
        .await
        .unwrap();
    assert_eq!(second, first, "the context row is updated in place");
    assert_eq!(
        db.load_task_context(task).await.unwrap(),
        Some(json!({"rows": 12, "late": true}))
    );
    let after = row_counts(&db).await;
    assert_eq!(
        (after.contexts, after.metadata),
        (contexts_before + 1, 1),
        "no orphan, one metadata row"
    );

    let metadata = db
        .get_dependency_metadata_with_contexts(pipeline_id, &names(&["extract_a"]))
        .await
        .unwrap();
    assert_eq!(metadata.len(), 1);
    let (row, value) = &metadata[0];
    assert_eq!(
        (
            row.task_execution_id,
            row.pipeline_execution_id,
            row.task_name.as_str(),
            row.context_id
        ),
        (task, pipeline_id, "extract_a", Some(first))
    );
    assert!(row.updated_at >= row.created_at);
    assert_eq!(value, &Some(json!({"rows": 12, "late": true})));

    // One ContextSaved event per save, naming the context.
    let events: Vec<(EventType, Option<Value>)> = db
        .run(move |conn| {
            Ok(execution_events::table
                .filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task))))
                .order(execution_events::sequence)
                .select((execution_events::event_type, execution_events::event_data))
                .load(conn)?)
        })
        .await
        .unwrap();
    let expected_data = Some(json!({"context_id": first}));
    assert_eq!(
        events,
        vec![
            (EventType::ContextSaved, expected_data.clone()),
            (EventType::ContextSaved, expected_data)
        ]
    );

    // An empty object is a valid (empty) output context.
    db.save_task_context(tasks["notify"], &json!({}))
        .await
        .unwrap();
    assert_eq!(
        db.load_task_context(tasks["notify"]).await.unwrap(),
        Some(json!({}))
    );
}

#[tokio::test]
async fn saving_refuses_bad_input_and_unknown_tasks_writing_nothing() {
    let db = TestDb::new().await;
    let (_, tasks) = dag(&db).await;
    let before = row_counts(&db).await;

    let err = db
        .save_task_context(tasks["load"], &json!([1]))
        .await
        .unwrap_err();
    assert!(matches!(err, DalError::InvalidInput { .. }), "{err:?}");
    assert_not_found(
        db.save_task_context(Uuid::new_v4(), &json!({"a": 1})).await,
        "task execution",
    );
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(count_events(&db, None).await, 0);

    assert_not_found(db.load_task_context(Uuid::new_v4()).await, "task execution");
}

#[tokio::test]
async fn a_deleted_task_context_is_replaced_by_a_new_one() {
    let db = TestDb::new().await;
    let (pipeline_id, tasks) = dag(&db).await;
    let task = tasks["validate"];
    let first = db
        .save_task_context(task, &json!({"ok": true}))
        .await
        .unwrap();
    db.delete_context(first).await.unwrap();
    assert_eq!(
        db.load_task_context(task).await.unwrap(),
        None,
        "the link was cleared"
    );
    let (row, value) = db
        .get_dependency_metadata_with_contexts(pipeline_id, &names(&["validate"]))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((row.context_id, value), (None, None));

    let second = db
        .save_task_context(task, &json!({"ok": false}))
        .await
        .unwrap();
    assert_ne!(second, first);
    assert_eq!(
        db.load_task_context(task).await.unwrap(),
        Some(json!({"ok": false}))
    );
    let metadata = db
        .get_dependency_metadata_with_contexts(pipeline_id, &names(&["validate"]))
        .await
        .unwrap();
    assert_eq!(metadata.len(), 1, "still one metadata row");
    assert_eq!(metadata[0].0.id, row.id);
    assert_eq!(metadata[0].0.context_id, Some(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_of_one_task_leave_one_context_and_one_metadata_row() {
    let db = TestDb::new().await;
    let (_, tasks) = dag(&db).await;
    let contexts_before = row_counts(&db).await.contexts;

    // Ten writers race on each task's first save, for every task at once.
    let saves = tasks.values().flat_map(|task| {
        (0..10).map(|i| {
            let (dal, task): (TaskExecutionDal, Uuid) = (db.dal().clone(), *task);
            tokio::spawn(async move {
                (
                    task,
                    dal.save_task_context(task, &json!({"writer": i})).await,
                )
            })
        })
    });
    let mut ids: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for joined in futures::future::join_all(saves.collect::<Vec<_>>()).await {
        let (task, saved) = joined.unwrap();
        ids.entry(task).or_default().push(saved.unwrap());
    }
    for (task, saved) in &ids {
        assert!(
            saved.iter().all(|id| *id == saved[0]),
            "every save of a task writes one context row"
        );
        let value = db.load_task_context(*task).await.unwrap().unwrap();
        assert!((0..10).any(|i| value == json!({"writer": i})), "{value}");
    }
    let tasks = tasks.len() as i64;
    let after = row_counts(&db).await;
    assert_eq!(
        (after.contexts, after.metadata),
        (contexts_before + tasks, tasks)
    );
}

#[tokio::test]
async fn task_contexts_load_in_one_batch() {
    let db = TestDb::new().await;
    let saved = json!({
        "extract_a": {"a": 1},
        "extract_b": {"b": [1, 2]},
        "validate": {"valid": true},
    });
    let (pipeline_id, _) = dag_with_contexts(&db, &saved).await;
    // Another pipeline with a task of the same name must not leak in.
    let (other, other_tasks) = dag(&db).await;
    db.save_task_context(other_tasks["extract_a"], &json!({"a": "other"}))
        .await
        .unwrap();

    let loaded = db
        .load_task_contexts_batch(
            pipeline_id,
            names(&[
                "extract_a",
                "extract_b",
                "validate",
                "transform",
                "ghost",
                "extract_a",
            ]),
        )
        .await
        .unwrap();
    let expected: HashMap<String, Value> = saved.as_object().unwrap().clone().into_iter().collect();
    assert_eq!(
        loaded, expected,
        "tasks without a saved context and unknown names are absent"
    );

    assert_eq!(
        db.load_task_contexts_batch(other, names(&["extract_a"]))
            .await
            .unwrap(),
        HashMap::from([("extract_a".to_string(), json!({"a": "other"}))])
    );
    assert_empty(db.load_task_contexts_batch(pipeline_id, Vec::new()).await);
    assert_empty(
        db.load_task_contexts_batch(Uuid::new_v4(), names(&["extract_a"]))
            .await,
    );
    assert!(matches!(
        db.load_task_contexts_batch(pipeline_id, names(&[""])).await,
        Err(DalError::InvalidInput { .. })
    ));
}

/// 10,000 tasks named `task-00000`…, each with a saved context `{"i": i}`,
/// written in bulk.
async fn big_pipeline_with_contexts(db: &TestDb) -> Uuid {
    let pipeline_id = db.insert_new_pipeline("etl").await;
    let now = te_core::toolkit::now();
    let names = (0..10_000).map(|i| format!("task-{i:05}"));
    let rows = task_rows(pipeline_id, TaskStatus::Completed, now, names);
    let context_rows: Vec<_> = (0..10_000).map(|_| te_core::toolkit::new_id()).collect();
    let metadata: Vec<_> = rows
        .iter()
        .zip(&context_rows)
        .map(|(task, context_id)| {
            metadata_row(
                pipeline_id,
                task.id,
                &task.task_name,
                Some(*context_id),
                now,
            )
        })
        .collect();
    db.insert_tasks(rows).await;
    db.write(move |conn| {
        let documents: Vec<(Uuid, Value)> = context_rows
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, json!({ "i": i })))
            .collect();
        te_testkit::insert_contexts(conn, &documents, now)?;
        te_testkit::insert_metadata(conn, &metadata)
    })
    .await
    .unwrap();
    pipeline_id
}

#[tokio::test]
async fn batch_loads_on_10_000_and_100_000_names() {
    let db = TestDb::new().await;
    let pipeline_id = big_pipeline_with_contexts(&db).await;
    let all: Vec<String> = (0..10_000).map(|i| format!("task-{i:05}")).collect();
    let expected: HashMap<String, Value> = (0..10_000)
        .map(|i| (format!("task-{i:05}"), json!({ "i": i })))
        .collect();

    let loaded = db
        .load_task_contexts_batch(pipeline_id, all.clone())
        .await
        .unwrap();
    assert_eq!(loaded, expected);

    let mut many = all.clone();
    many.extend((0..90_000).map(|i| format!("missing-{i}")));
    many.reverse();
    let loaded = db
        .load_task_contexts_batch(pipeline_id, many.clone())
        .await
        .unwrap();
    assert_eq!(loaded, expected);

    let metadata = db
        .get_dependency_metadata_with_contexts(pipeline_id, &many)
        .await
        .unwrap();
    assert_eq!(metadata.len(), 10_000);
    let order: Vec<&str> = metadata.iter().map(|(m, _)| m.task_name.as_str()).collect();
    let mut expected_order: Vec<&str> = all.iter().map(String::as_str).collect();
    expected_order.reverse();
    assert_eq!(order, expected_order, "in the order the names are given");
    assert!(
        metadata
            .iter()
            .all(|(m, v)| v.as_ref() == expected.get(&m.task_name))
    );

    // The merged context of 10,000 dependencies: later names win.
    let merged = db.load_dependency_context(pipeline_id, &all).await.unwrap();
    assert_eq!(merged, json!({"i": 9_999}));
}

#[tokio::test]
async fn dependency_metadata_comes_with_its_context_in_the_order_given() {
    let db = TestDb::new().await;
    let (pipeline_id, tasks) =
        dag_with_contexts(&db, &json!({"extract_a": {"a": 1}, "validate": {"v": 1}})).await;
    // A metadata row without a context.
    let now = te_core::toolkit::now();
    let row = metadata_row(pipeline_id, tasks["transform"], "transform", None, now);
    db.write(move |conn| te_testkit::insert_metadata(conn, &[row]))
        .await
        .unwrap();

    let rows = db
        .get_dependency_metadata_with_contexts(
            pipeline_id,
            &names(&["validate", "ghost", "transform", "extract_a", "load"]),
        )
        .await
        .unwrap();
    let got: Vec<(&str, Uuid, Option<Value>)> = rows
        .iter()
        .map(|(m, v)| (m.task_name.as_str(), m.task_execution_id, v.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("validate", tasks["validate"], Some(json!({"v": 1}))),
            ("transform", tasks["transform"], None),
            ("extract_a", tasks["extract_a"], Some(json!({"a": 1}))),
        ]
    );
    assert_empty(
        db.get_dependency_metadata_with_contexts(pipeline_id, &[])
            .await,
    );
    assert_empty(
        db.get_dependency_metadata_with_contexts(Uuid::new_v4(), &names(&["validate"]))
            .await,
    );
}

#[tokio::test]
async fn dependency_contexts_merge_in_the_order_given() {
    let db = TestDb::new().await;
    let saved = json!({
        "extract_a": {"source": "a", "rows": [1, 2], "meta": {"a": true, "shared": "a"}},
        "extract_b": {"source": "b", "rows": [2, 3], "meta": {"b": true, "shared": "b"}},
    });
    let (pipeline_id, tasks) = dag_with_contexts(&db, &saved).await;

    let ab = merged_context(&db, pipeline_id, &["extract_a", "extract_b"]).await;
    assert_eq!(
        ab,
        json!({"source": "b", "rows": [1, 2, 3], "meta": {"a": true, "b": true, "shared": "b"}})
    );
    let ba = merged_context(&db, pipeline_id, &["extract_b", "extract_a"]).await;
    assert_eq!(
        ba,
        json!({"source": "a", "rows": [2, 3, 1], "meta": {"a": true, "b": true, "shared": "a"}})
    );
    // What the function does is what merge_context_values does, in order.
    let a = db
        .load_task_context(tasks["extract_a"])
        .await
        .unwrap()
        .unwrap();
    let b = db
        .load_task_context(tasks["extract_b"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ab,
        merge_context_values(&merge_context_values(&json!({}), &a), &b)
    );

    // Dependencies without a saved context add nothing.
    let with_gaps = merged_context(&db, pipeline_id, &["load", "extract_a", "ghost"]).await;
    assert_eq!(with_gaps, a);
    assert_eq!(merged_context(&db, pipeline_id, &["load"]).await, json!({}));

    // No dependencies: the pipeline's initial context, or {} without one.
    assert_eq!(
        db.load_dependency_context(pipeline_id, &[]).await.unwrap(),
        json!({"run": "nightly", "tags": ["etl"]})
    );
    let bare = db.insert_new_pipeline("etl").await;
    assert_eq!(
        db.load_dependency_context(bare, &[]).await.unwrap(),
        json!({})
    );

    let unknown = Uuid::new_v4();
    assert_not_found(
        db.load_dependency_context(unknown, &[]).await,
        "pipeline execution",
    );
    assert_not_found(
        db.load_dependency_context(unknown, &names(&["extract_a"]))
            .await,
        "pipeline execution",
    );
    assert!(matches!(
        db.load_dependency_context(pipeline_id, &names(&["extract_a", " "]))
            .await,
        Err(DalError::InvalidInput { .. })
    ));
}

/// Stores a context row whose document both databases accept as a JSON
/// object but that cannot be decoded (a number beyond the range of `f64`, as
/// another program might write), and returns its id.
fn insert_undecodable_context(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> Result<Uuid, DalError> {
    let id = te_core::toolkit::new_id();
    let sql = match conn.backend() {
        Backend::Sqlite => {
            "INSERT INTO contexts (id, value, created_at, updated_at) VALUES (?, ?, ?, ?)"
        }
        Backend::Postgres => {
            "INSERT INTO contexts (id, value, created_at, updated_at) VALUES ($1, CAST($2 AS jsonb), $3, $4)"
        }
    };
    diesel::sql_query(sql)
        .bind::<te_core::sql_types::DbUuid, _>(id)
        .bind::<diesel::sql_types::Text, _>(r#"{"huge": 1e400, "ok": 1}"#)
        .bind::<te_core::sql_types::UtcTimestamp, _>(now)
        .bind::<te_core::sql_types::UtcTimestamp, _>(now)
        .execute(conn)?;
    Ok(id)
}

#[tokio::test]
async fn an_undecodable_stored_context_is_an_error_never_a_partial_result() {
    let db = TestDb::new().await;
    let (pipeline_id, tasks) = dag_with_contexts(
        &db,
        &json!({"extract_a": {"good": 1}, "extract_b": {"good": 2}}),
    )
    .await;

    // Link the broken context as validate's output, and as a pipeline's initial context.
    let (validate, now) = (tasks["validate"], te_core::toolkit::now());
    let bad_pipeline = db.insert_new_pipeline("etl").await;
    let broken = db
        .run(move |conn| {
            let broken = insert_undecodable_context(conn, now)?;
            let row = metadata_row(pipeline_id, validate, "validate", Some(broken), now);
            te_testkit::insert_metadata(conn, &[row])?;
            diesel::update(pipeline_executions::table.find(bind::id(bad_pipeline)))
                .set(pipeline_executions::context_id.eq(bind::opt_id(Some(broken))))
                .execute(conn)?;
            Ok(broken)
        })
        .await
        .unwrap();

    let is_invalid_data =
        |result: Result<_, DalError>| matches!(result, Err(DalError::InvalidData { .. }));
    assert!(is_invalid_data(db.read_context(broken).await.map(|_| ())));
    assert!(is_invalid_data(
        db.load_task_context(validate).await.map(|_| ())
    ));
    let deps = names(&["extract_a", "validate", "extract_b"]);
    assert!(is_invalid_data(
        db.load_task_contexts_batch(pipeline_id, deps.clone())
            .await
            .map(|_| ())
    ));
    assert!(is_invalid_data(
        db.get_dependency_metadata_with_contexts(pipeline_id, &deps)
            .await
            .map(|_| ())
    ));
    assert!(is_invalid_data(
        db.load_dependency_context(pipeline_id, &deps)
            .await
            .map(|_| ())
    ));
    assert!(is_invalid_data(
        db.load_dependency_context(bad_pipeline, &[])
            .await
            .map(|_| ())
    ));

    // The good contexts still load on their own.
    assert_eq!(
        db.load_dependency_context(pipeline_id, &names(&["extract_a", "extract_b"]))
            .await
            .unwrap(),
        json!({"good": 2})
    );
}

#[tokio::test]
async fn contexts_follow_the_operations_of_the_other_crates() {
    let db = TestDb::new().await;
    let initial = json!({"date": "2026-11-26", "limits": {"rows": 100}});
    let pipeline = db
        .create_pipeline_execution(NewPipelineExecution::new("etl").context(initial.clone()))
        .await
        .unwrap();
    assert_eq!(
        db.load_dependency_context(pipeline.id, &[]).await.unwrap(),
        initial
    );
    assert_eq!(
        db.read_context(pipeline.context_id.unwrap()).await.unwrap(),
        initial
    );

    let extract = db
        .create(NewTaskExecution::new(pipeline.id, "extract"))
        .await
        .unwrap();
    db.save_task_context(extract.id, &json!({"limits": {"cols": 5}}))
        .await
        .unwrap();
    assert_eq!(
        db.load_dependency_context(pipeline.id, &names(&["extract"]))
            .await
            .unwrap(),
        json!({"limits": {"cols": 5}})
    );
    assert_eq!(
        event_types(&db, extract.id).await,
        [EventType::TaskCreated, EventType::ContextSaved]
    );
}
