//! te-queries on the backend `TE_TEST_BACKEND` selects: every query on a
//! realistic pipeline (a DAG of 10 tasks in mixed statuses, beside another
//! pipeline's tasks), batch forms on 10,000 and 100,000 inputs, empty inputs,
//! unknown ids, `list_tasks` pagination and filters, and the audit log.
//!
//! Fixtures are written straight into the tables with explicit statuses.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use te_core::toolkit::NewEvent;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{self, assert_empty, assert_invalid, assert_not_found, event_types};

/// One task of a fixture pipeline.
struct Spec {
    name: &'static str,
    status: TaskStatus,
    attempt: i32,
    max_attempts: i32,
    error_details: Option<&'static str>,
}

const fn spec(name: &'static str, status: TaskStatus, attempt: i32, max_attempts: i32) -> Spec {
    Spec {
        name,
        status,
        attempt,
        max_attempts,
        error_details: None,
    }
}

impl Spec {
    /// The same task, with `details` as its stored error.
    const fn error(self, details: &'static str) -> Spec {
        Spec {
            error_details: Some(details),
            ..self
        }
    }
}

/// An ETL pipeline: extract_a, extract_b -> validate -> transform -> enrich
/// -> load -> report -> notify, with archive and cleanup off to the side.
const DAG: [Spec; 10] = [
    spec("extract_a", TaskStatus::Completed, 1, 3),
    spec("extract_b", TaskStatus::Completed, 2, 3),
    spec("validate", TaskStatus::Failed, 3, 3).error("schema mismatch"),
    spec("transform", TaskStatus::Running, 1, 2),
    spec("enrich", TaskStatus::Ready, 2, 2),
    spec("load", TaskStatus::NotStarted, 1, 1),
    spec("report", TaskStatus::NotStarted, 1, 1),
    spec("notify", TaskStatus::Skipped, 1, 1),
    spec("archive", TaskStatus::Failed, 1, 3).error("timeout"),
    spec("cleanup", TaskStatus::Failed, 4, 4).error("ABANDONED: runner lost 3 times"),
];

fn task_row(pipeline_id: Uuid, spec: &Spec, created_at: DateTime<Utc>) -> TaskExecution {
    let mut row = NewTaskExecution::new(pipeline_id, spec.name)
        .status(spec.status)
        .max_attempts(spec.max_attempts)
        .into_row(created_at);
    row.attempt = spec.attempt;
    row.error_details = spec.error_details.map(str::to_owned);
    row
}

/// A pipeline holding the tasks of `specs`, created one microsecond apart in
/// order; returns its id and the rows as stored.
async fn pipeline_with(db: &TestDb, specs: &[Spec]) -> (Uuid, Vec<TaskExecution>) {
    let pipeline_id = db.insert_new_pipeline("etl").await;
    let base = te_core::toolkit::now();
    let rows: Vec<_> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| task_row(pipeline_id, s, base + Duration::microseconds(i as i64)))
        .collect();
    db.insert_tasks(rows.clone()).await;
    (pipeline_id, rows)
}

/// The DAG pipeline, plus a second pipeline with a running, a pending and a
/// completed task, so that every query must keep to its pipeline.
async fn dag_and_neighbour(db: &TestDb) -> (Uuid, Vec<TaskExecution>, Uuid, Vec<TaskExecution>) {
    let (dag, dag_rows) = pipeline_with(db, &DAG).await;
    let (other, other_rows) = pipeline_with(
        db,
        &[
            spec("transform", TaskStatus::Running, 2, 3),
            spec("load", TaskStatus::NotStarted, 1, 1),
            spec("extract_a", TaskStatus::Completed, 1, 1),
        ],
    )
    .await;
    (dag, dag_rows, other, other_rows)
}

fn ids(tasks: &[TaskExecution]) -> Vec<Uuid> {
    tasks.iter().map(|t| t.id).collect()
}

fn sorted_ids<'a>(tasks: impl IntoIterator<Item = &'a TaskExecution>) -> Vec<Uuid> {
    let mut tasks: Vec<_> = tasks.into_iter().collect();
    tasks.sort_by_key(|t| (t.created_at, t.id));
    tasks.into_iter().map(|t| t.id).collect()
}

#[tokio::test]
async fn pending_orphaned_and_exhausted_tasks_keep_to_their_pipeline() {
    let db = TestDb::new().await;
    let (dag, rows, other, other_rows) = dag_and_neighbour(&db).await;

    let pending = db.get_pending_tasks(dag).await.unwrap();
    assert_eq!(
        ids(&pending),
        sorted_ids(rows.iter().filter(|t| t.status == TaskStatus::NotStarted))
    );
    assert_eq!(
        pending
            .iter()
            .map(|t| t.task_name.as_str())
            .collect::<Vec<_>>(),
        ["load", "report"]
    );
    assert_eq!(pending[0], rows[5], "whole rows come back as stored");

    let orphaned = db.get_orphaned_tasks().await.unwrap();
    assert_eq!(
        ids(&orphaned),
        sorted_ids(
            rows.iter()
                .chain(&other_rows)
                .filter(|t| t.status == TaskStatus::Running)
        ),
        "running tasks of every pipeline"
    );
    assert_eq!(orphaned.len(), 2);

    let exhausted = db.get_exhausted_retry_tasks(dag).await.unwrap();
    assert_eq!(
        exhausted
            .iter()
            .map(|t| t.task_name.as_str())
            .collect::<Vec<_>>(),
        ["validate", "cleanup"],
        "failed with attempt >= max_attempts; archive still has attempts left"
    );
    assert_empty(db.get_exhausted_retry_tasks(other).await);

    let unknown = Uuid::new_v4();
    assert!(db.get_pending_tasks(unknown).await.unwrap().is_empty());
    assert_empty(db.get_exhausted_retry_tasks(unknown).await);
}

#[tokio::test]
async fn pending_tasks_batch_covers_many_pipelines_once_each() {
    let db = TestDb::new().await;
    let (dag, rows, other, other_rows) = dag_and_neighbour(&db).await;
    let (_, _) = pipeline_with(&db, &[spec("load", TaskStatus::NotStarted, 1, 1)]).await;

    assert_empty(db.get_pending_tasks_batch(Vec::new()).await);

    let pending = db
        .get_pending_tasks_batch(vec![dag, other, dag, Uuid::new_v4()])
        .await
        .unwrap();
    let expected = sorted_ids(
        rows.iter()
            .chain(&other_rows)
            .filter(|t| t.status == TaskStatus::NotStarted),
    );
    assert_eq!(
        ids(&pending),
        expected,
        "each task once, ordered by (created_at, id)"
    );

    // 100,000 ids: more than one statement may bind, on either backend.
    let mut many: Vec<Uuid> = (0..100_000).map(|_| Uuid::new_v4()).collect();
    many[77_777] = other;
    many[3] = dag;
    let pending = db.get_pending_tasks_batch(many).await.unwrap();
    assert_eq!(ids(&pending), expected);
}

#[tokio::test]
async fn completion_and_failure_of_pipelines() {
    let db = TestDb::new().await;
    let (dag, _, other, _) = dag_and_neighbour(&db).await;

    assert!(
        !db.check_pipeline_completion(dag).await.unwrap(),
        "transform is running"
    );
    assert!(
        db.check_pipeline_failure(dag).await.unwrap(),
        "cleanup was abandoned"
    );
    assert!(!db.check_pipeline_completion(other).await.unwrap());
    assert!(!db.check_pipeline_failure(other).await.unwrap());

    let (done, _) = pipeline_with(
        &db,
        &[
            spec("a", TaskStatus::Completed, 1, 1),
            spec("b", TaskStatus::Skipped, 1, 1),
            spec("c", TaskStatus::Failed, 1, 1).error("boom"),
        ],
    )
    .await;
    assert!(db.check_pipeline_completion(done).await.unwrap());
    assert!(
        !db.check_pipeline_failure(done).await.unwrap(),
        "failed, but not abandoned"
    );

    // The marker counts only on a failed task, and only as a prefix.
    let (not_abandoned, _) = pipeline_with(
        &db,
        &[
            spec("reset", TaskStatus::Ready, 1, 2).error("ABANDONED: earlier attempt"),
            spec("quoted", TaskStatus::Failed, 1, 1).error("worker said ABANDONED: x"),
        ],
    )
    .await;
    assert!(!db.check_pipeline_failure(not_abandoned).await.unwrap());

    let empty = db.insert_new_pipeline("etl").await;
    assert!(
        !db.check_pipeline_completion(empty).await.unwrap(),
        "a pipeline without tasks is not complete"
    );
    assert!(!db.check_pipeline_failure(empty).await.unwrap());

    let unknown = Uuid::new_v4();
    assert_not_found(
        db.check_pipeline_completion(unknown).await,
        "pipeline execution",
    );
    assert_not_found(
        db.check_pipeline_failure(unknown).await,
        "pipeline execution",
    );
}

#[tokio::test]
async fn task_status_one_by_one_and_in_batches() {
    let db = TestDb::new().await;
    let (dag, rows, other, _) = dag_and_neighbour(&db).await;

    for row in &rows {
        assert_eq!(
            db.get_task_status(dag, &row.task_name).await.unwrap(),
            row.status
        );
    }
    assert_eq!(
        db.get_task_status(other, "transform").await.unwrap(),
        TaskStatus::Running
    );
    let err = db.get_task_status(dag, "no_such_task").await.unwrap_err();
    assert!(
        matches!(&err, DalError::NotFound { key, .. } if key == "no_such_task"),
        "{err:?}"
    );
    assert_not_found(
        db.get_task_status(Uuid::new_v4(), "load").await,
        "task execution",
    );
    assert!(matches!(
        db.get_task_status(dag, "").await,
        Err(DalError::InvalidInput { .. })
    ));

    let mut names: Vec<String> = rows.iter().map(|t| t.task_name.clone()).collect();
    names.push("ghost".into());
    names.push("load".into());
    let statuses = db.get_task_statuses_batch(dag, names).await.unwrap();
    let expected: HashMap<String, TaskStatus> = rows
        .iter()
        .map(|t| (t.task_name.clone(), t.status))
        .collect();
    assert_eq!(statuses, expected, "unknown names are absent");

    assert_empty(db.get_task_statuses_batch(dag, Vec::new()).await);
    assert_empty(
        db.get_task_statuses_batch(Uuid::new_v4(), vec!["load".into()])
            .await,
    );
    assert!(matches!(
        db.get_task_statuses_batch(dag, vec!["load".into(), " ".into()])
            .await,
        Err(DalError::InvalidInput { .. })
    ));
}

/// 10,000 tasks named `task-00000`…, statuses cycling through every status.
async fn big_pipeline(db: &TestDb) -> (Uuid, Vec<TaskExecution>) {
    let pipeline_id = db.insert_new_pipeline("etl").await;
    let now = te_core::toolkit::now();
    let rows: Vec<_> = (0..10_000)
        .map(|i| {
            let status = TaskStatus::ALL[i % TaskStatus::ALL.len()];
            NewTaskExecution::new(pipeline_id, format!("task-{i:05}"))
                .status(status)
                .into_row(now)
        })
        .collect();
    db.insert_tasks(rows.clone()).await;
    (pipeline_id, rows)
}

#[tokio::test]
async fn task_statuses_batch_on_a_few_hundred_10_000_and_100_000_names() {
    let db = TestDb::new().await;
    let (pipeline_id, rows) = big_pipeline(&db).await;
    let expected: HashMap<String, TaskStatus> = rows
        .iter()
        .map(|t| (t.task_name.clone(), t.status))
        .collect();

    let names: Vec<String> = rows.iter().map(|t| t.task_name.clone()).collect();
    let statuses = db
        .get_task_statuses_batch(pipeline_id, names.clone())
        .await
        .unwrap();
    assert_eq!(statuses, expected);

    // A few hundred names of the 10,000 tasks, some of them unknown: the
    // pipeline is too large to read whole for so few.
    let mut some: Vec<String> = names.iter().step_by(31).cloned().collect();
    some.extend((0..20).map(|i| format!("missing-{i}")));
    assert!(some.len() > 300);
    let statuses = db
        .get_task_statuses_batch(pipeline_id, some.clone())
        .await
        .unwrap();
    let wanted: HashMap<String, TaskStatus> = some
        .iter()
        .filter_map(|name| Some((name.clone(), *expected.get(name)?)))
        .collect();
    assert_eq!(statuses.len(), 323);
    assert_eq!(statuses, wanted);

    let mut many = names;
    many.extend((0..90_000).map(|i| format!("missing-{i}")));
    many.reverse();
    let statuses = db.get_task_statuses_batch(pipeline_id, many).await.unwrap();
    assert_eq!(statuses, expected);
}

#[tokio::test]
async fn all_task_statuses_for_many_pipelines() {
    let db = TestDb::new().await;
    let (dag, rows, other, other_rows) = dag_and_neighbour(&db).await;
    let empty = db.insert_new_pipeline("etl").await;
    let unknown = Uuid::new_v4();

    assert_empty(db.get_all_task_statuses_for_pipelines(Vec::new()).await);

    let all = db
        .get_all_task_statuses_for_pipelines(vec![dag, other, empty, unknown, dag])
        .await
        .unwrap();
    let of = |rows: &[TaskExecution]| -> HashMap<String, TaskStatus> {
        rows.iter()
            .map(|t| (t.task_name.clone(), t.status))
            .collect()
    };
    let expected: HashMap<Uuid, HashMap<String, TaskStatus>> = [
        (dag, of(&rows)),
        (other, of(&other_rows)),
        (empty, HashMap::new()),
        (unknown, HashMap::new()),
    ]
    .into_iter()
    .collect();
    assert_eq!(all, expected);

    // More ids than one statement may bind.
    let mut many: Vec<Uuid> = (0..40_000).map(|_| Uuid::new_v4()).collect();
    many.push(other);
    let all = db.get_all_task_statuses_for_pipelines(many).await.unwrap();
    assert_eq!(all.len(), 40_001);
    assert_eq!(all[&other], of(&other_rows));
    assert_eq!(all.values().filter(|m| !m.is_empty()).count(), 1);
}

#[tokio::test]
async fn counting_tasks() {
    let db = TestDb::new().await;
    let (dag, rows, other, other_rows) = dag_and_neighbour(&db).await;

    let count = |rows: &[&TaskExecution]| -> HashMap<TaskStatus, i64> {
        let mut counts: HashMap<TaskStatus, i64> =
            TaskStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for t in rows {
            *counts.get_mut(&t.status).unwrap() += 1;
        }
        counts
    };
    let dag_counts = db.count_tasks_by_status(Some(dag)).await.unwrap();
    assert_eq!(dag_counts, count(&rows.iter().collect::<Vec<_>>()));
    assert_eq!(dag_counts[&TaskStatus::Failed], 3);
    assert_eq!(dag_counts[&TaskStatus::Running], 1);

    let everything = db.count_tasks_by_status(None).await.unwrap();
    assert_eq!(
        everything,
        count(&rows.iter().chain(&other_rows).collect::<Vec<_>>())
    );
    assert_eq!(everything.values().sum::<i64>(), 13);

    let none = db
        .count_tasks_by_status(Some(Uuid::new_v4()))
        .await
        .unwrap();
    assert_eq!(none.len(), TaskStatus::ALL.len());
    assert!(none.values().all(|n| *n == 0));

    assert_eq!(db.count_running_tasks().await.unwrap(), 2);
    assert_eq!(
        db.count_tasks_by_status(Some(other)).await.unwrap()[&TaskStatus::Running],
        1
    );
}

#[tokio::test]
async fn retry_stats_are_computed_by_the_database() {
    let db = TestDb::new().await;
    let (dag, rows, other, _) = dag_and_neighbour(&db).await;

    let stats = db.get_retry_stats(dag).await.unwrap();
    let expected = RetryStats {
        tasks_with_retries: rows.iter().filter(|t| t.attempt > 1).count() as i64,
        total_retries: rows.iter().map(|t| i64::from(t.attempt - 1)).sum(),
        max_attempts_used: rows.iter().map(|t| t.attempt).max().unwrap(),
        tasks_exhausted_retries: rows
            .iter()
            .filter(|t| t.status == TaskStatus::Failed && t.attempt >= t.max_attempts)
            .count() as i64,
    };
    assert_eq!(stats, expected);
    assert_eq!(
        stats,
        RetryStats {
            tasks_with_retries: 4,
            total_retries: 7,
            max_attempts_used: 4,
            tasks_exhausted_retries: 2,
        }
    );

    let other_stats = db.get_retry_stats(other).await.unwrap();
    assert_eq!(
        other_stats,
        RetryStats {
            tasks_with_retries: 1,
            total_retries: 1,
            max_attempts_used: 2,
            tasks_exhausted_retries: 0,
        }
    );

    let empty = db.insert_new_pipeline("etl").await;
    assert_eq!(
        db.get_retry_stats(empty).await.unwrap(),
        RetryStats::default()
    );
    assert_not_found(
        db.get_retry_stats(Uuid::new_v4()).await,
        "pipeline execution",
    );
}

/// 250 tasks over three pipelines, many sharing one `created_at` (so that
/// pages must break ties by id), with `updated_at` spread out.
async fn paging_fixture(db: &TestDb) -> (Vec<Uuid>, Vec<TaskExecution>, DateTime<Utc>) {
    let pipelines = vec![
        db.insert_new_pipeline("etl").await,
        db.insert_new_pipeline("etl").await,
        db.insert_new_pipeline("etl").await,
    ];
    let base = te_core::toolkit::now();
    let rows: Vec<_> = (0..250)
        .map(|i| {
            let status = TaskStatus::ALL[i % TaskStatus::ALL.len()];
            // Ten rows per instant; inserted out of time order below.
            let created = base + Duration::milliseconds((i / 10) as i64);
            let mut row = NewTaskExecution::new(pipelines[i % 3], format!("t{i:03}"))
                .status(status)
                .into_row(created);
            row.updated_at =
                base + Duration::seconds(10) + Duration::milliseconds((249 - i) as i64);
            row
        })
        .collect();
    let mut shuffled = rows.clone();
    shuffled.reverse();
    db.insert_tasks(shuffled).await;
    (pipelines, rows, base)
}

/// Every page of `filter`, following `after`, with `page` rows a page.
async fn all_pages(db: &TestDb, mut filter: TaskFilter, page: i64) -> Vec<Vec<TaskExecution>> {
    filter.limit = page;
    let mut pages = Vec::new();
    loop {
        let rows = db.list_tasks(filter.clone()).await.unwrap();
        assert!(rows.len() as i64 <= page);
        let Some(last) = rows.last() else { break };
        filter.after = Some(last.id);
        pages.push(rows);
    }
    pages
}

#[tokio::test]
async fn list_tasks_pages_without_gaps_or_duplicates() {
    let db = TestDb::new().await;
    let (_, rows, _) = paging_fixture(&db).await;
    let expected = sorted_ids(&rows);

    for page in [1, 7, 10, 100, 250, 1000] {
        let pages = all_pages(&db, TaskFilter::default(), page).await;
        let got: Vec<Uuid> = pages.iter().flatten().map(|t| t.id).collect();
        assert_eq!(got, expected, "page size {page}");
        assert_eq!(pages.len(), 250_usize.div_ceil(page as usize));
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), 250);
    }

    // A page follows its cursor even when rows are added before it meanwhile.
    let first = db
        .list_tasks(TaskFilter {
            limit: 50,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    let second = db
        .list_tasks(TaskFilter {
            limit: 50,
            after: Some(first[49].id),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), expected[50..100]);

    // The default page, the end of the list, and bad limits and cursors.
    assert_eq!(
        db.list_tasks(TaskFilter::default()).await.unwrap().len(),
        100
    );
    let after_last = TaskFilter {
        after: Some(*expected.last().unwrap()),
        ..TaskFilter::default()
    };
    assert!(db.list_tasks(after_last).await.unwrap().is_empty());
    let unknown_cursor = TaskFilter {
        after: Some(Uuid::new_v4()),
        ..TaskFilter::default()
    };
    assert_not_found(db.list_tasks(unknown_cursor).await, "task execution");
    for limit in [-1, te_queries::MAX_PAGE_SIZE + 1] {
        let filter = TaskFilter {
            limit,
            ..TaskFilter::default()
        };
        assert_invalid(db.list_tasks(filter).await, "limit");
    }
    let all = db
        .list_tasks(TaskFilter {
            limit: te_queries::MAX_PAGE_SIZE,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), expected);
}

#[tokio::test]
async fn list_tasks_applies_every_filter() {
    let db = TestDb::new().await;
    let (pipelines, rows, base) = paging_fixture(&db).await;

    // Each case: every page of the filter equals the fixture rows `keep` selects, in order.
    type Keep = Box<dyn Fn(&TaskExecution) -> bool>;
    fn case(
        what: &'static str,
        edit: impl FnOnce(&mut TaskFilter),
        keep: impl Fn(&TaskExecution) -> bool + 'static,
    ) -> (&'static str, TaskFilter, Keep) {
        let mut filter = TaskFilter::default();
        edit(&mut filter);
        (what, filter, Box::new(keep))
    }
    let p = pipelines[1];
    // Bounds are exclusive: instant 5 ms holds rows 50..60.
    let at = base + Duration::milliseconds(5);
    let upd = base + Duration::seconds(10) + Duration::milliseconds(100);
    let (from, to) = (
        base + Duration::milliseconds(3),
        base + Duration::milliseconds(20),
    );
    let (ready, failed, completed) = (TaskStatus::Ready, TaskStatus::Failed, TaskStatus::Completed);
    #[rustfmt::skip]
    let cases = [
        case("pipeline", |f| f.pipeline_execution_id = Some(p), move |t| t.pipeline_execution_id == p),
        case("one status", |f| f.statuses = vec![ready], |t| t.status == TaskStatus::Ready),
        case("several statuses", |f| f.statuses = vec![failed, completed, failed],
             |t| matches!(t.status, TaskStatus::Failed | TaskStatus::Completed)),
        case("task name", |f| f.task_name = Some("t123".into()), |t| t.task_name == "t123"),
        case("created after", |f| f.created_after = Some(at), move |t| t.created_at > at),
        case("created before", |f| f.created_before = Some(at), move |t| t.created_at < at),
        case("updated after", |f| f.updated_after = Some(upd), move |t| t.updated_at > upd),
        case("updated before", |f| f.updated_before = Some(upd), move |t| t.updated_at < upd),
        case(
            "combined",
            |f| {
                *f = TaskFilter {
                    statuses: vec![ready, failed],
                    created_after: Some(from),
                    created_before: Some(to),
                    updated_before: Some(upd + Duration::milliseconds(100)),
                    ..TaskFilter::for_pipeline(p)
                }
            },
            move |t| {
                t.pipeline_execution_id == p
                    && matches!(t.status, TaskStatus::Ready | TaskStatus::Failed)
                    && t.created_at > from
                    && t.created_at < to
                    && t.updated_at < upd + Duration::milliseconds(100)
            },
        ),
    ];
    for (what, filter, keep) in cases {
        let expected = sorted_ids(rows.iter().filter(|t| keep(t)));
        let got: Vec<Uuid> = all_pages(&db, filter, 9)
            .await
            .into_iter()
            .flatten()
            .map(|t| t.id)
            .collect();
        assert_eq!(got, expected, "{what}");
        assert!(
            !expected.is_empty(),
            "{what}: the fixture selects something"
        );
        assert!(
            expected.len() < 250,
            "{what}: the fixture leaves something out"
        );
    }

    assert!(
        db.list_tasks(TaskFilter {
            task_name: Some("nope".into()),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
    assert_empty(
        db.list_tasks(TaskFilter::for_pipeline(Uuid::new_v4()))
            .await,
    );
    let empty_name = TaskFilter {
        task_name: Some(String::new()),
        ..TaskFilter::default()
    };
    assert_invalid(db.list_tasks(empty_name).await, "task_name");
}

#[tokio::test]
async fn events_come_back_in_sequence_order() {
    let db = TestDb::new().await;
    let (dag, rows, other, other_rows) = dag_and_neighbour(&db).await;
    let (a, b, c) = (rows[0].id, rows[1].id, other_rows[0].id);
    let now = te_core::toolkit::now();
    let pipeline_event = NewEvent {
        task_execution_id: None,
        ..NewEvent::task(dag, a, EventType::PipelineCreated, now)
    };
    // Written out of time order: `sequence`, not `created_at`, is the order.
    let events = vec![
        pipeline_event,
        NewEvent::task(dag, a, EventType::TaskCreated, now + Duration::seconds(5)),
        NewEvent::task(dag, b, EventType::TaskCreated, now),
        NewEvent::task(other, c, EventType::TaskCreated, now),
        NewEvent::task(dag, a, EventType::TaskReady, now + Duration::seconds(1)),
        NewEvent::task(dag, b, EventType::TaskFailed, now).data(json!({"error": "boom"})),
        NewEvent::task(dag, a, EventType::TaskClaimed, now).runner(Some(Uuid::new_v4())),
    ];
    let written = events.clone();
    db.write(move |conn| te_core::toolkit::record_events(conn, &written))
        .await
        .unwrap();

    let of_a = db.get_events_for_task(a).await.unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.id).collect::<Vec<_>>(),
        [events[1].id, events[4].id, events[6].id]
    );
    assert!(of_a.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(of_a[2].runner_id, events[6].runner_id);

    let of_b = db.get_events_for_task(b).await.unwrap();
    assert_eq!(of_b[1].event_type, EventType::TaskFailed);
    assert_eq!(of_b[1].event_data, Some(json!({"error": "boom"})));

    let of_dag = db.get_events_for_pipeline(dag).await.unwrap();
    let expected: Vec<Uuid> = events
        .iter()
        .filter(|e| e.pipeline_execution_id == dag)
        .map(|e| e.id)
        .collect();
    assert_eq!(of_dag.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    assert_eq!(of_dag[0].task_execution_id, None);
    assert_eq!(db.get_events_for_pipeline(other).await.unwrap().len(), 1);

    assert_empty(db.get_events_for_task(Uuid::new_v4()).await);
    assert_empty(db.get_events_for_pipeline(Uuid::new_v4()).await);
}

#[tokio::test]
async fn queries_follow_the_operations_of_the_other_crates() {
    let db = TestDb::new().await;
    let pipeline = common::pipeline(&db).await;
    let tasks = db
        .create_many(vec![
            NewTaskExecution::new(pipeline.id, "extract"),
            NewTaskExecution::new(pipeline.id, "load"),
        ])
        .await
        .unwrap();
    let (extract, load) = (tasks[0].id, tasks[1].id);
    assert_eq!(
        ids(&db.get_pending_tasks(pipeline.id).await.unwrap()),
        [extract, load]
    );

    db.mark_ready(extract).await.unwrap();
    db.mark_started(extract).await.unwrap();
    assert_eq!(ids(&db.get_orphaned_tasks().await.unwrap()), [extract]);
    assert!(!db.check_pipeline_failure(pipeline.id).await.unwrap());
    db.mark_abandoned(extract, "runner lost").await.unwrap();
    db.mark_skipped(load, "upstream abandoned").await.unwrap();

    assert!(db.check_pipeline_failure(pipeline.id).await.unwrap());
    assert!(db.check_pipeline_completion(pipeline.id).await.unwrap());
    assert_eq!(
        db.get_task_status(pipeline.id, "extract").await.unwrap(),
        TaskStatus::Failed
    );
    assert_eq!(
        ids(&db.get_exhausted_retry_tasks(pipeline.id).await.unwrap()),
        [extract]
    );
    let events = event_types(&db, extract).await;
    assert_eq!(events.first(), Some(&EventType::TaskCreated));
    assert_eq!(events.last(), Some(&EventType::TaskAbandoned));
    assert!(events.contains(&EventType::TaskReady));
}
