//! The hostile input table: names, texts, JSON and instants that one backend
//! stored and the other refused, run on the backend `TE_TEST_BACKEND`
//! selects. Each row expects the same outcome on both backends: either the
//! value round-trips unchanged, or the call is `InvalidInput` and the
//! database is exactly as it was (rows and audit events counted and compared).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use te_core::schema::pipeline_executions as pe;
use te_core::schema::task_executions as te;
use te_core::schema::{contexts, execution_events, task_execution_metadata};
use te_core::toolkit::validate::{MAX_JSON_DEPTH, MAX_NAME_BYTES, discard, earliest_instant};
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

/// Everything a refused call must leave unchanged: row counts of every table
/// (audit events included), and when each pipeline and task row last changed.
/// (Read as raw columns: a stored value the DAL cannot decode must not hide a
/// write.)
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: [i64; 5],
    pipelines: Vec<(Uuid, DateTime<Utc>, PipelineStatus)>,
    tasks: Vec<(Uuid, DateTime<Utc>, TaskStatus)>,
}

async fn snapshot(db: &TestDb) -> Snapshot {
    db.run(|conn| {
        let counts = [
            pe::table.count().get_result(conn)?,
            te::table.count().get_result(conn)?,
            contexts::table.count().get_result(conn)?,
            task_execution_metadata::table.count().get_result(conn)?,
            execution_events::table.count().get_result(conn)?,
        ];
        let pipelines = pe::table
            .order(pe::id)
            .select((pe::id, pe::updated_at, pe::status))
            .load(conn)?;
        let tasks = te::table
            .order(te::id)
            .select((te::id, te::updated_at, te::status))
            .load(conn)?;
        Ok(Snapshot {
            counts,
            pipelines,
            tasks,
        })
    })
    .await
    .unwrap()
}

/// The rows that did not behave as expected, each with what happened.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    /// `op` must be `InvalidInput` and leave the database unchanged.
    async fn refused<T, F>(&mut self, db: &TestDb, row: &str, op: F)
    where
        F: Future<Output = Result<T, DalError>>,
    {
        let before = snapshot(db).await;
        let result = op.await;
        let after = snapshot(db).await;
        let outcome = match &result {
            Err(DalError::InvalidInput { .. }) => None,
            Err(err) => Some(format!("error {}", short(&format!("{err:?}")))),
            Ok(_) => Some("Ok".to_owned()),
        };
        match (outcome, before == after) {
            (None, true) => {}
            (None, false) => self.0.push(format!("{row}: InvalidInput but rows changed")),
            (Some(outcome), _) => self
                .0
                .push(format!("{row}: expected InvalidInput, got {outcome}")),
        }
    }

    /// Each of `calls` must be `InvalidInput` and leave the database
    /// unchanged, as in [`Failures::refused`]; they run one after another.
    async fn refused_all(&mut self, db: &TestDb, calls: Vec<(&str, Call<'_>)>) {
        for (row, op) in calls {
            self.refused(db, row, op).await;
        }
    }

    /// `result` must be `Ok` and `check` must accept its value.
    fn stored<T>(
        &mut self,
        row: &str,
        result: Result<T, DalError>,
        check: impl FnOnce(T) -> Result<(), String>,
    ) {
        match result {
            Ok(value) => {
                if let Err(why) = check(value) {
                    self.0.push(format!("{row}: stored but {why}"));
                }
            }
            Err(err) => self.0.push(format!(
                "{row}: expected Ok, got {}",
                short(&format!("{err:?}"))
            )),
        }
    }
}

/// A call under test, its value dropped, so that calls of any result type
/// stand in one table of [`Failures::refused_all`]; it runs when awaited.
type Call<'a> = Pin<Box<dyn Future<Output = Result<(), DalError>> + 'a>>;

fn call<'a, T>(op: impl Future<Output = Result<T, DalError>> + 'a) -> Call<'a> {
    Box::pin(async move { op.await.map(drop) })
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// An array/object value nested `depth` levels deep, built without recursion.
fn nested(depth: usize) -> Value {
    // Built with the constructors: `json!` serialises an interpolated value,
    // which recurses.
    let object = |key: &str, value| Value::Object([(key.to_owned(), value)].into_iter().collect());
    let mut value = json!("leaf");
    for level in 0..depth {
        value = if level % 2 == 0 {
            Value::Array(vec![value])
        } else {
            object("k", value)
        };
    }
    object("deep", value)
}

/// A pipeline with one task in `status`; returns (pipeline id, task id).
async fn fixture(db: &TestDb, status: TaskStatus) -> (Uuid, Uuid) {
    let pipeline = db
        .create_pipeline_execution(NewPipelineExecution::new("hostile"))
        .await
        .unwrap();
    let task = db
        .create(NewTaskExecution::new(pipeline.id, "t").max_attempts(3))
        .await
        .unwrap();
    match status {
        TaskStatus::NotStarted => {}
        TaskStatus::Ready => db.mark_ready(task.id).await.unwrap(),
        TaskStatus::Running => {
            db.mark_ready(task.id).await.unwrap();
            db.mark_started(task.id).await.unwrap();
        }
        other => panic!("no fixture for {other:?}"),
    }
    (pipeline.id, task.id)
}

const NUL: &str = "nul\0byte";

/// Names and free texts.
async fn names_and_texts(db: &TestDb, f: &mut Failures) {
    let (pipeline_id, task_id) = fixture(db, TaskStatus::Running).await;
    let huge = "n".repeat(1 << 20);

    let mut version = NewPipelineExecution::new("p");
    version.pipeline_version = NUL.to_owned();
    let one_too_long = vec![
        NewTaskExecution::new(pipeline_id, "fine"),
        NewTaskExecution::new(pipeline_id, huge.clone()),
    ];
    f.refused_all(
        db,
        vec![
            (
                "NUL in pipeline name",
                call(db.create_pipeline_execution(NewPipelineExecution::new(NUL))),
            ),
            (
                "NUL in pipeline version",
                call(db.create_pipeline_execution(version)),
            ),
            (
                "1 MB pipeline name",
                call(db.create_pipeline_execution(NewPipelineExecution::new(huge.clone()))),
            ),
            (
                "NUL in task name",
                call(db.create(NewTaskExecution::new(pipeline_id, NUL))),
            ),
            (
                "1 MB task name",
                call(db.create(NewTaskExecution::new(pipeline_id, huge.clone()))),
            ),
            (
                "1 MB task name in create_many",
                call(db.create_many(one_too_long)),
            ),
        ],
    )
    .await;
    let longest = "é".repeat(MAX_NAME_BYTES / 2);
    let created = db
        .create(NewTaskExecution::new(pipeline_id, longest.clone()))
        .await;
    f.stored("task name of MAX_NAME_BYTES", created, |task| {
        (task.task_name == longest)
            .then_some(())
            .ok_or("the name changed".to_owned())
    });
    let status = db.get_task_status(pipeline_id, &longest).await;
    f.stored("lookup of a name of MAX_NAME_BYTES", status, |_| Ok(()));

    let nul_name = || vec![NUL.to_owned()];
    let filter = TaskFilter {
        task_name: Some(NUL.to_owned()),
        ..TaskFilter::default()
    };
    let (_, ready_id) = fixture(db, TaskStatus::Ready).await;
    f.refused_all(
        db,
        vec![
            (
                "lookup of a NUL name",
                call(db.get_task_status(pipeline_id, NUL)),
            ),
            (
                "lookup of a 1 MB name",
                call(db.get_task_status(pipeline_id, &huge)),
            ),
            (
                "batch lookup of a NUL name",
                call(db.get_task_statuses_batch(pipeline_id, nul_name())),
            ),
            (
                "context lookup of a NUL name",
                call(db.load_task_contexts_batch(pipeline_id, nul_name())),
            ),
            (
                "dependency context of a NUL name",
                call(db.load_dependency_context(pipeline_id, &[NUL.to_owned()])),
            ),
            ("list_tasks by a NUL name", call(db.list_tasks(filter))),
            (
                "NUL in mark_failed error",
                call(db.mark_failed(task_id, NUL, None)),
            ),
            (
                "NUL in mark_abandoned reason",
                call(db.mark_abandoned(task_id, NUL)),
            ),
            (
                "NUL in mark_skipped reason",
                call(db.mark_skipped(ready_id, NUL)),
            ),
            (
                "NUL in pipeline error_details",
                call(db.update_pipeline_status(pipeline_id, PipelineStatus::Failed, Some(NUL))),
            ),
        ],
    )
    .await;

    let (_, task_id) = fixture(db, TaskStatus::Running).await;
    let text = "a long error ".repeat(100_000);
    let failed = db.mark_failed(task_id, &text, None).await;
    let stored = db.get_by_id(task_id).await.map(|task| (failed, task));
    f.stored("1.3 MB error text", stored, |(failed, task)| {
        (matches!(failed, Ok(true)) && task.error_details.as_deref() == Some(text.as_str()))
            .then_some(())
            .ok_or("the text changed".to_owned())
    });
}

/// Every path that writes JSON, fed a value `make` builds; each must be
/// refused. Each path gets its own value (cloning or dropping a deep value
/// recurses once per level: the test takes them apart level by level).
async fn json_refused_everywhere(
    db: &TestDb,
    f: &mut Failures,
    what: &str,
    make: impl Fn() -> Value,
) {
    let owned = make();
    let value = &owned;
    let (pipeline_id, task_id) = fixture(db, TaskStatus::Running).await;
    let context_id = db
        .create_context(&json!({"fine": 1}))
        .await
        .unwrap()
        .unwrap();

    f.refused(
        db,
        &format!("{what}: save_task_context"),
        db.save_task_context(task_id, value),
    )
    .await;
    f.refused(
        db,
        &format!("{what}: create_context"),
        db.create_context(value),
    )
    .await;
    f.refused(
        db,
        &format!("{what}: update_context"),
        db.update_context(context_id, value),
    )
    .await;

    let new = NewPipelineExecution::new("p").context(make());
    f.refused(
        db,
        &format!("{what}: pipeline initial context"),
        db.create_pipeline_execution(new),
    )
    .await;

    let mut rules = NewTaskExecution::new(pipeline_id, "rules");
    rules.trigger_rules = make();
    let mut config = NewTaskExecution::new(pipeline_id, "config");
    config.task_configuration = make();
    for (field, new) in [("trigger_rules", rules), ("task_configuration", config)] {
        f.refused(db, &format!("{what}: {field}"), db.create(new))
            .await;
    }
    let mut new = NewTaskExecution::new(pipeline_id, "many");
    new.task_configuration = make();
    f.refused(
        db,
        &format!("{what}: create_many"),
        db.create_many(vec![NewTaskExecution::new(pipeline_id, "fine"), new]),
    )
    .await;

    let rules = TaskUpdate {
        trigger_rules: Some(make()),
        ..TaskUpdate::default()
    };
    let config = TaskUpdate {
        task_configuration: Some(make()),
        ..TaskUpdate::default()
    };
    for (field, update) in [("trigger_rules", rules), ("task_configuration", config)] {
        let row = format!("{what}: update_task {field}");
        f.refused(db, &row, db.update_task(task_id, update)).await;
    }
    discard([owned]);
}

/// A value every JSON path must store and give back exactly (same text).
async fn json_round_trips(db: &TestDb, f: &mut Failures, what: &str, value: &Value) {
    let (pipeline_id, task_id) = fixture(db, TaskStatus::Running).await;
    let expected = serde_json::to_string(value).unwrap();
    let same = |back: &Value| {
        let text = serde_json::to_string(back).unwrap();
        (text == expected)
            .then_some(())
            .ok_or_else(|| format!("read back {}", short(&text)))
    };

    let saved = db.save_task_context(task_id, value).await;
    let loaded = match saved {
        Ok(_) => db.load_task_context(task_id).await,
        Err(err) => Err(err),
    };
    f.stored(&format!("{what}: task context"), loaded, |back| {
        same(&back.unwrap_or_default())
    });
    let mut new = NewTaskExecution::new(pipeline_id, "config");
    new.task_configuration = value.clone();
    new.trigger_rules = value.clone();
    let created = match db.create(new).await {
        Ok(task) => db.get_by_id(task.id).await,
        Err(err) => Err(err),
    };
    f.stored(
        &format!("{what}: trigger_rules and task_configuration"),
        created,
        |task| {
            same(&task.task_configuration)?;
            same(&task.trigger_rules)
        },
    );
    let new = NewPipelineExecution::new("p").context(value.clone());
    let context = match db.create_pipeline_execution(new).await {
        Ok(pipeline) => db.load_dependency_context(pipeline.id, &[]).await,
        Err(err) => Err(err),
    };
    f.stored(
        &format!("{what}: pipeline initial context"),
        context,
        |back| same(&back),
    );
}

async fn json_rows(db: &TestDb, f: &mut Failures) {
    json_refused_everywhere(db, f, "\\u0000 in a JSON string", || json!({"k": [NUL]})).await;
    json_refused_everywhere(db, f, "\\u0000 in a JSON key", || json!({"a": {NUL: 1}})).await;
    json_refused_everywhere(db, f, "JSON -0.0", || json!({"n": -0.0})).await;
    json_refused_everywhere(db, f, "JSON float 1e16", || json!({"n": 1e16})).await;
    json_refused_everywhere(db, f, "JSON nested 200 levels", || nested(200)).await;
    json_refused_everywhere(db, f, "JSON nested 10,000 levels", || nested(10_000)).await;
    // `nested(n)` wraps n levels in one more object.
    json_refused_everywhere(db, f, "JSON nested MAX_JSON_DEPTH + 1 levels", || {
        nested(MAX_JSON_DEPTH)
    })
    .await;

    let deepest = nested(MAX_JSON_DEPTH - 1);
    json_round_trips(db, f, "JSON nested MAX_JSON_DEPTH levels", &deepest).await;
    let numbers = json!({
        "floats": [0.0, 1.0, -1.5, 1.5e-7, 1e300, -2.5e-300, 5e-324, 1e15 + 0.5, 123456.789],
        "integers": [0, -1, u64::MAX, i64::MIN],
        "big float": 1e20,
        "text": "é \u{1} \\u0000 \" \n",
        "": null,
    });
    json_round_trips(db, f, "JSON numbers and strings", &numbers).await;
}

/// Sets one time bound of a `TaskFilter` to the given instant.
type SetBound = fn(&mut TaskFilter, DateTime<Utc>);

/// A `TaskFilter` with only the bound `set` sets, at `at`.
fn filter_at(set: SetBound, at: DateTime<Utc>) -> TaskFilter {
    let mut filter = TaskFilter::default();
    set(&mut filter, at);
    filter
}

async fn instant_rows(db: &TestDb, f: &mut Failures) {
    let (_, task_id) = fixture(db, TaskStatus::Running).await;
    let before_earliest = earliest_instant() - chrono::Duration::microseconds(1);
    f.refused(
        db,
        "schedule_retry at MIN_UTC",
        db.schedule_retry(task_id, DateTime::<Utc>::MIN_UTC, 2),
    )
    .await;
    f.refused(
        db,
        "schedule_retry just before the earliest instant",
        db.schedule_retry(task_id, before_earliest, 2),
    )
    .await;
    for (row, at) in [
        ("schedule_retry at MAX_UTC", DateTime::<Utc>::MAX_UTC),
        ("schedule_retry at the earliest instant", earliest_instant()),
    ] {
        let (_, task_id) = fixture(db, TaskStatus::Running).await;
        let result = match db.schedule_retry(task_id, at, 2).await {
            Ok(()) => db.get_by_id(task_id).await,
            Err(err) => Err(err),
        };
        // Instants are stored to the microsecond.
        let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap();
        f.stored(row, result, |task| {
            (task.retry_at == Some(at))
                .then_some(())
                .ok_or_else(|| format!("retry_at is {:?}", task.retry_at))
        });
    }

    let bounds: [(&str, SetBound); 4] = [
        ("created_after", |q, t| q.created_after = Some(t)),
        ("created_before", |q, t| q.created_before = Some(t)),
        ("updated_after", |q, t| q.updated_after = Some(t)),
        ("updated_before", |q, t| q.updated_before = Some(t)),
    ];
    for (bound, set) in bounds {
        f.refused(
            db,
            &format!("list_tasks {bound} MIN_UTC"),
            db.list_tasks(filter_at(set, DateTime::<Utc>::MIN_UTC)),
        )
        .await;
        let listed = db
            .list_tasks(filter_at(set, DateTime::<Utc>::MAX_UTC))
            .await;
        f.stored(&format!("list_tasks {bound} MAX_UTC"), listed, |_| Ok(()));
    }

    // A claim whose heartbeat is old, and thresholds longer than any instant.
    let (_, claimed) = fixture(db, TaskStatus::Ready).await;
    let runner = Uuid::now_v7();
    db.claim_for_runner(claimed, runner).await.unwrap();
    for (row, threshold) in [
        (
            "find_stale_claims, 10,000 years",
            Duration::from_secs(10_000 * 366 * 24 * 3600),
        ),
        (
            "find_stale_claims, 100,000,000 hours",
            Duration::from_secs(100_000_000 * 3600),
        ),
        ("find_stale_claims, Duration::MAX", Duration::MAX),
    ] {
        let before = snapshot(db).await;
        let found = db.find_stale_claims(threshold).await;
        let unchanged = before == snapshot(db).await;
        f.stored(row, found, |claims| {
            (claims.is_empty() && unchanged)
                .then_some(())
                .ok_or_else(|| format!("found {claims:?}"))
        });
    }
    let found = db.find_stale_claims(Duration::ZERO).await;
    f.stored("find_stale_claims, zero", found, |claims| {
        claims
            .iter()
            .any(|claim| claim.task_id == claimed)
            .then_some(())
            .ok_or("the claim was not found".to_owned())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_the_same_answer_on_every_backend() {
    let db = TestDb::new().await;
    let mut failures = Failures::default();
    names_and_texts(&db, &mut failures).await;
    json_rows(&db, &mut failures).await;
    instant_rows(&db, &mut failures).await;
    assert!(
        failures.0.is_empty(),
        "{} row(s) of the hostile input table failed on {}:\n{}",
        failures.0.len(),
        db.backend(),
        failures.0.join("\n")
    );
}

/// Connecting with a password in any form: neither the error's `Display`,
/// nor its `Debug`, nor any error of its source chain shows it.
#[tokio::test]
async fn no_connection_error_shows_a_password() {
    let cases = [
        (
            "postgres://u:pass/word@127.0.0.1:1/db",
            ["pass/word", "pass", "word"],
        ),
        (
            "postgres://u:s3cr%2Ft@127.0.0.1:1/db",
            ["s3cr%2Ft", "s3cr/t", "s3cr"],
        ),
        ("postgres://127.0.0.1:1/db?password=s3cr3t", ["s3cr3t"; 3]),
        (
            "postgres://127.0.0.1:1/db?password=s3cr3t&bogus=1",
            ["s3cr3t"; 3],
        ),
        ("postgres://u:p@ssw@127.0.0.1:1/db", ["p@ssw"; 3]),
    ];
    for (url, secrets) in cases {
        let config = DalConfig::new(url);
        let debug = format!("{config:?}");
        let err = TaskExecutionDal::connect_with(config)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(err, DalError::Connection { .. }), "{err:?}");
        let mut texts = vec![debug, err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            texts.push(cause.to_string());
            texts.push(format!("{cause:?}"));
            source = cause.source();
        }
        for text in &texts {
            for secret in secrets {
                assert!(!text.contains(secret), "{url}: {text}");
            }
        }
    }
}
