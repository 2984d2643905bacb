//! Pipeline control on the backend `TE_TEST_BACKEND` selects: cancel, pause
//! and resume with their events and refusals, priorities in the claim order,
//! the claim's plan, pipeline listing with keyset pages, final contexts and
//! pruning (row counts of every table), and races with claimers.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use diesel::prelude::*;
use serde_json::json;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    RowCounts, assert_invalid, assert_not_found, handle_with_pool, ids, row_counts,
};

use TaskStatus::{Completed, NotStarted, Ready, Running, Skipped};

/// Every event of `pipeline_id` (and its tasks), in log order.
async fn events_of(dal: &TaskExecutionDal, pipeline_id: Uuid) -> Vec<ExecutionEvent> {
    dal.get_events_for_pipeline(pipeline_id).await.unwrap()
}

fn of_type(events: &[ExecutionEvent], event_type: EventType) -> Vec<&ExecutionEvent> {
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

async fn pipeline(dal: &TaskExecutionDal, name: &str) -> Uuid {
    dal.create_pipeline_execution(NewPipelineExecution::new(name))
        .await
        .unwrap()
        .id
}

async fn tasks(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    prefix: &str,
    n: usize,
    status: TaskStatus,
) -> Vec<TaskExecution> {
    dal.create_many(
        (0..n)
            .map(|i| NewTaskExecution::new(pipeline_id, format!("{prefix}-{i:04}")).status(status))
            .collect(),
    )
    .await
    .unwrap()
}

/// A pipeline named `name` with `n` tasks in `Ready`, named after it;
/// returns its id and the tasks.
async fn pipeline_of_ready(
    dal: &TaskExecutionDal,
    name: &str,
    n: usize,
) -> (Uuid, Vec<TaskExecution>) {
    let pipeline_id = pipeline(dal, name).await;
    (pipeline_id, tasks(dal, pipeline_id, name, n, Ready).await)
}

/// Two pipelines of ready tasks, each named and sized as given and made as
/// [`pipeline_of_ready`] makes them, and a second handle on `db`'s database
/// (a pool of 8) for the side that races; returns both ids and the handle.
async fn pipelines_to_race(
    db: &TestDb,
    (a, a_len): (&str, usize),
    (b, b_len): (&str, usize),
) -> (Uuid, Uuid, TaskExecutionDal) {
    let (a, _) = pipeline_of_ready(db, a, a_len).await;
    let (b, _) = pipeline_of_ready(db, b, b_len).await;
    (a, b, handle_with_pool(db, 8).await)
}

/// Sets the priority of the task `task_id`.
async fn set_priority(dal: &TaskExecutionDal, task_id: Uuid, priority: i32) {
    let update = TaskUpdate {
        priority: Some(priority),
        ..TaskUpdate::default()
    };
    dal.update_task(task_id, update).await.unwrap();
}

fn assert_illegal_pipeline(
    result: Result<impl std::fmt::Debug, DalError>,
    id: Uuid,
    expected_from: PipelineStatus,
) {
    match result {
        Err(err @ DalError::IllegalPipelineTransition { .. }) => {
            let DalError::IllegalPipelineTransition {
                pipeline_id, from, ..
            } = &err
            else {
                unreachable!()
            };
            assert_eq!((*pipeline_id, *from), (id, expected_from));
            assert!(err.to_string().contains(expected_from.as_str()), "{err}");
        }
        other => panic!("expected IllegalPipelineTransition, got {other:?}"),
    }
}

// --- cancel ------------------------------------------------------------------

#[tokio::test]
async fn cancel_skips_unstarted_tasks_and_leaves_running_ones_to_their_runner() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl").await;
    let other = pipeline(&db, "other").await;
    let waiting = tasks(&db, p, "waiting", 2, NotStarted).await;
    let ready = tasks(&db, p, "ready", 3, Ready).await;
    let running = tasks(&db, p, "running", 1, Ready).await[0].clone();
    let done = tasks(&db, p, "done", 1, Ready).await[0].clone();
    let elsewhere = tasks(&db, other, "elsewhere", 2, Ready).await;
    let runner = Uuid::new_v4();
    assert_eq!(
        db.claim_for_runner(running.id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );
    // Claim `running` (reserved for the runner) and `done`, then finish `done`.
    set_priority(&db, running.id, 5).await;
    set_priority(&db, done.id, 10).await;
    let claimed = db.claim_ready_task(1).await.unwrap();
    assert_eq!(claimed[0].id, done.id);
    assert!(db.mark_completed(done.id, None).await.unwrap());
    assert_eq!(
        db.claim_ready_tasks_for_runner(runner, 1).await.unwrap()[0].id,
        running.id
    );
    let before = events_of(&db, p).await.len();

    let outcome = db.cancel_pipeline(p, "operator stop").await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome {
            skipped: 5,
            running: 1
        }
    );

    let row = db.get_pipeline_execution(p).await.unwrap();
    assert_eq!(row.status, PipelineStatus::Cancelled);
    assert!(row.completed_at.is_some());
    let events = events_of(&db, p).await;
    let new = &events[before..];
    assert_eq!(new.len(), 6, "one status event and one per skipped task");
    assert_eq!(of_type(new, EventType::PipelineStatusChanged).len(), 1);
    let skipped_events = of_type(new, EventType::TaskSkipped);
    assert_eq!(skipped_events.len(), 5);
    for event in &skipped_events {
        assert_eq!(
            event.event_data.as_ref().unwrap()["reason"],
            "operator stop"
        );
    }
    let skipped_ids: HashSet<Uuid> = skipped_events
        .iter()
        .map(|e| e.task_execution_id.unwrap())
        .collect();
    let expected: HashSet<Uuid> = waiting.iter().chain(&ready).map(|t| t.id).collect();
    assert_eq!(skipped_ids, expected);
    for id in &expected {
        let task = db.get_by_id(*id).await.unwrap();
        assert_eq!(task.status, Skipped);
        assert_eq!(task.error_details.as_deref(), Some("operator stop"));
        assert!(task.completed_at.is_some());
    }
    assert_eq!(db.get_by_id(done.id).await.unwrap().status, Completed);
    assert_eq!(db.get_by_id(running.id).await.unwrap().status, Running);

    // Nothing of the cancelled pipeline is claimable; the other one is.
    let claimed = db.claim_ready_task(100).await.unwrap();
    let claimed: HashSet<Uuid> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(claimed, elsewhere.iter().map(|t| t.id).collect());

    // The runner learns of the cancel, keeps its claim, and ends honestly.
    assert_eq!(
        db.heartbeat(running.id, runner).await.unwrap(),
        HeartbeatResult::Cancelled
    );
    assert_eq!(
        db.heartbeat(running.id, Uuid::new_v4()).await.unwrap(),
        HeartbeatResult::ClaimLost
    );
    assert!(
        db.mark_failed(running.id, "stopped", Some(runner))
            .await
            .unwrap()
    );
    assert_eq!(
        db.get_pipeline_execution(p).await.unwrap().status,
        PipelineStatus::Cancelled
    );
    // No retry for a task of a cancelled pipeline.
    let before = row_counts(&db).await;
    assert_illegal_pipeline(
        db.schedule_retry(running.id, chrono::Utc::now(), 1).await,
        p,
        PipelineStatus::Cancelled,
    );
    assert_eq!(row_counts(&db).await, before);

    // Cancelling again: idempotent, no event.
    assert_eq!(
        db.cancel_pipeline(p, "again").await.unwrap(),
        CancelOutcome {
            skipped: 0,
            running: 0
        }
    );
    assert_eq!(row_counts(&db).await, before);
}

#[tokio::test]
async fn cancelling_a_finished_or_unknown_pipeline_is_refused_writing_nothing() {
    let db = TestDb::new().await;
    for status in [PipelineStatus::Completed, PipelineStatus::Failed] {
        let p = pipeline(&db, "etl").await;
        tasks(&db, p, "t", 2, NotStarted).await;
        db.update_pipeline_status(p, status, None).await.unwrap();
        let before = row_counts(&db).await;
        let row = db.get_pipeline_execution(p).await.unwrap();
        let result = db.cancel_pipeline(p, "late").await;
        if let Err(err) = &result {
            let message = err.to_string();
            assert!(message.contains("Cancelled"), "{message}");
        }
        assert_illegal_pipeline(result, p, status);
        assert_eq!(row_counts(&db).await, before);
        assert_eq!(db.get_pipeline_execution(p).await.unwrap(), row);
    }
    let before = row_counts(&db).await;
    assert_not_found(
        db.cancel_pipeline(Uuid::new_v4(), "x").await,
        "pipeline execution",
    );
    assert_eq!(row_counts(&db).await, before);

    // A reason neither backend can store alike is refused before anything.
    let p = pipeline(&db, "etl").await;
    tasks(&db, p, "t", 2, NotStarted).await;
    let before = row_counts(&db).await;
    assert_invalid(db.cancel_pipeline(p, "nul\0byte").await, "reason");
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(
        db.get_pipeline_execution(p).await.unwrap().status,
        PipelineStatus::Running
    );
}

// --- pause / resume ------------------------------------------------------------

#[tokio::test]
async fn paused_pipelines_are_not_claimed_until_resumed_in_their_order() {
    let db = TestDb::new().await;
    let (a, a_tasks) = pipeline_of_ready(&db, "a", 4).await;
    let (b, b_tasks) = pipeline_of_ready(&db, "b", 2).await;
    let runner = Uuid::new_v4();
    // A runner reservation on a paused pipeline's task is not claimed either.
    db.claim_for_runner(a_tasks[0].id, runner).await.unwrap();

    db.pause_pipeline(a).await.unwrap();
    assert!(db.get_pipeline_execution(a).await.unwrap().paused);
    db.pause_pipeline(a).await.unwrap();
    let paused_events = of_type(&events_of(&db, a).await, EventType::PipelinePaused).len();
    assert_eq!(paused_events, 1, "pausing twice writes one event");

    assert!(
        db.claim_ready_tasks_for_runner(runner, 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.pipeline_execution_id == b)
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
    for t in &b_tasks {
        assert_eq!(db.get_by_id(t.id).await.unwrap().status, Running);
    }

    // Resuming a pipeline that is not paused does nothing.
    db.resume_pipeline(b).await.unwrap();
    assert!(of_type(&events_of(&db, b).await, EventType::PipelineResumed).is_empty());

    db.resume_pipeline(a).await.unwrap();
    db.resume_pipeline(a).await.unwrap();
    assert_eq!(
        of_type(&events_of(&db, a).await, EventType::PipelineResumed).len(),
        1
    );
    assert!(!db.get_pipeline_execution(a).await.unwrap().paused);
    let claimed = ids(&db.claim_ready_task(10).await.unwrap());
    assert_eq!(
        claimed,
        a_tasks[1..].iter().map(|t| t.id).collect::<Vec<_>>(),
        "original order"
    );
    assert_eq!(
        db.claim_ready_tasks_for_runner(runner, 10).await.unwrap()[0].id,
        a_tasks[0].id
    );

    // Terminal pipelines cannot be paused; unknown ids are NotFound.
    db.update_pipeline_status(b, PipelineStatus::Completed, None)
        .await
        .unwrap();
    let before = row_counts(&db).await;
    assert_illegal_pipeline(db.pause_pipeline(b).await, b, PipelineStatus::Completed);
    assert_not_found(
        db.pause_pipeline(Uuid::new_v4()).await,
        "pipeline execution",
    );
    assert_not_found(
        db.resume_pipeline(Uuid::new_v4()).await,
        "pipeline execution",
    );
    assert_eq!(row_counts(&db).await, before);
}

// --- priorities ----------------------------------------------------------------

#[tokio::test]
async fn claims_take_the_highest_priority_first_across_pipelines() {
    let db = TestDb::new().await;
    let a = pipeline(&db, "a").await;
    let b = pipeline(&db, "b").await;
    let mut specs = Vec::new();
    for (i, priority) in [0, 5, -1, 5, 0, 9, 1].into_iter().enumerate() {
        let pid = if i % 2 == 0 { a } else { b };
        let task = db
            .create(
                NewTaskExecution::new(pid, format!("t{i}"))
                    .status(Ready)
                    .priority(priority),
            )
            .await
            .unwrap();
        assert_eq!(task.priority, priority);
        specs.push(task);
    }
    let mut expected = specs.clone();
    expected.sort_by_key(|t| (std::cmp::Reverse(t.priority), t.created_at, t.id));
    let expected: Vec<Uuid> = expected.iter().map(|t| t.id).collect();

    // One batch: returned in claim order.
    let first = db.claim_ready_task(3).await.unwrap();
    let rest = db.claim_ready_task(10).await.unwrap();
    let got: Vec<Uuid> = first.iter().chain(&rest).map(|c| c.id).collect();
    assert_eq!(got, expected);
    assert_eq!(first.len(), 3);

    // A default task has priority 0, and update_task changes it.
    let low = tasks(&db, a, "low", 2, Ready).await;
    assert_eq!(low[0].priority, 0);
    set_priority(&db, low[1].id, 3).await;
    let claimed = db.claim_ready_task(1).await.unwrap();
    assert_eq!(claimed[0].id, low[1].id);
}

/// Asserts that `claim` (the claim of `limit`, by a runner or not) walks
/// `task_executions_ready_idx` in claim order and stops at the limit: no sort
/// of the candidates, and on PostgreSQL, as run, no more index entries read
/// than the limit and the rows held or claimed before it, and no sequential
/// scan of the tasks.
fn assert_walks_the_ready_index(
    backend: Backend,
    claim: &te_claiming::ClaimPlan,
    limit: i64,
    skipped: i64,
    what: &str,
) {
    let text = claim.lines.join("\n");
    // Asserts that `part` of the plan names each of `has` and none of `lacks`.
    let names = |part: &str, has: &[&str], lacks: &[&str]| {
        for needle in has {
            assert!(part.contains(needle), "{what}: {needle} in {text}");
        }
        for needle in lacks {
            assert!(!part.contains(needle), "{what}: no {needle} in {text}");
        }
    };
    match backend {
        Backend::Sqlite => {
            // The rows to update are looked up by the ids selected, not
            // found by walking every ready task through the status index.
            let lacks = ["USE TEMP B-TREE FOR ORDER BY", "task_executions_status_idx"];
            names(&text, &["task_executions_ready_idx"], &lacks);
            assert!(
                text.lines()
                    .next()
                    .is_some_and(|first| first.contains("(id=?)")),
                "{what}: {text}"
            );
        }
        Backend::Postgres => {
            // The candidates come from the function that walks the index;
            // the claimed rows are found by primary key. (The events' insert
            // orders the few claimed rows itself.)
            let between = |from: &str, to: &str| {
                text.split(from)
                    .nth(1)
                    .and_then(|rest| rest.split(to).next())
                    .unwrap_or_default()
            };
            let candidates = between("CTE claimable", "CTE claimed");
            names(candidates, &["te_claim_candidates"], &["Sort"]);
            let update = between("CTE claimed", "CTE logged");
            let lacks = ["task_executions_ready_idx", "Seq Scan on task_executions"];
            names(update, &["task_executions_pkey"], &lacks);
            let reads = claim.reads.expect("PostgreSQL reports what the claim read");
            assert_eq!(reads.claimed as i64, limit, "{what}: {reads:?}");
            assert!(
                reads.ready_index_entries <= limit + skipped,
                "{what}: read {reads:?}, more than {limit} + {skipped} entries of the ready index"
            );
            assert_eq!(reads.sequential_scans, 0, "{what}: {reads:?}");
        }
    }
}

#[tokio::test]
async fn the_claim_walks_the_ready_index_in_order_without_a_sort() {
    let db = TestDb::new().await;
    // History and ready work spread over many pipelines, one paused and one
    // cancelled: the shape of a live database; thousands of ready tasks,
    // and tables never analyzed (a new deployment before autovacuum runs,
    // or a server without it): no statistics to plan by.
    let mut first = None;
    for i in 0..20 {
        let p = pipeline(&db, &format!("plan-{i}")).await;
        tasks(&db, p, "done", 100, Completed).await;
        tasks(&db, p, "ready", 200, Ready).await;
        match i {
            0 => first = Some(p),
            // Last in claim order: its skipped tasks' entries stay in the
            // index until a vacuum, after everything a claim reads.
            19 => drop(db.cancel_pipeline(p, "plan").await.unwrap()),
            _ => {}
        }
    }
    // The oldest ready tasks are held: a claim reads past them.
    db.pause_pipeline(first.unwrap()).await.unwrap();
    let held = 200;
    let backend = db.backend();
    let runner = Uuid::new_v4();
    for analyzed in [false, true] {
        if analyzed && backend == Backend::Postgres {
            db.run(|conn| Ok(diesel::sql_query("ANALYZE").execute(conn).map(drop)?))
                .await
                .unwrap();
        }
        for (limit, who) in [(1, None), (32, None), (1, Some(runner)), (32, Some(runner))] {
            let claim = db
                .run(move |conn| te_claiming::explain_claim(conn, limit, who))
                .await
                .unwrap();
            let what = format!(
                "analyzed {analyzed}, limit {limit}, runner {}",
                who.is_some()
            );
            assert_walks_the_ready_index(backend, &claim, limit, held, &what);
        }
    }
}

// --- listing -------------------------------------------------------------------

#[tokio::test]
async fn list_pipelines_filters_and_pages() {
    let db = TestDb::new().await;
    let mut made = Vec::new();
    for i in 0..6 {
        let name = if i % 2 == 0 { "even" } else { "odd" };
        made.push(
            db.create_pipeline_execution(NewPipelineExecution::new(name))
                .await
                .unwrap(),
        );
    }
    db.update_pipeline_status(made[1].id, PipelineStatus::Completed, None)
        .await
        .unwrap();
    db.cancel_pipeline(made[2].id, "no").await.unwrap();

    let all = db.list_pipelines(PipelineFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        made.iter().map(|p| p.id).collect::<Vec<_>>()
    );
    let odd = db
        .list_pipelines(PipelineFilter {
            pipeline_name: Some("odd".into()),
            ..PipelineFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(odd.len(), 3);
    let finished = db
        .list_pipelines(PipelineFilter {
            statuses: vec![PipelineStatus::Completed, PipelineStatus::Cancelled],
            ..PipelineFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        finished.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![made[1].id, made[2].id]
    );
    // created_after is inclusive, created_before exclusive.
    let window = db
        .list_pipelines(PipelineFilter {
            created_after: Some(made[2].created_at),
            created_before: Some(made[4].created_at),
            ..PipelineFilter::default()
        })
        .await
        .unwrap();
    assert!(window.iter().any(|p| p.id == made[2].id));
    assert!(window.iter().all(|p| p.id != made[4].id));
    assert!(
        window
            .iter()
            .all(|p| p.created_at >= made[2].created_at && p.created_at < made[4].created_at)
    );

    let active = db.get_active_pipelines().await.unwrap();
    assert_eq!(
        active.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![made[0].id, made[3].id, made[4].id, made[5].id]
    );

    let list_with = |set: fn(&mut PipelineFilter)| {
        let mut filter = PipelineFilter::default();
        set(&mut filter);
        db.list_pipelines(filter)
    };
    assert_invalid(list_with(|f| f.limit = 1_001).await, "limit");
    assert_invalid(list_with(|f| f.limit = -1).await, "limit");
    assert_invalid(
        list_with(|f| f.pipeline_name = Some(String::new())).await,
        "pipeline_name",
    );
    assert_not_found(
        list_with(|f| f.after = Some(Uuid::new_v4())).await,
        "pipeline execution",
    );
}

#[tokio::test]
async fn list_pipelines_default_page_is_100() {
    let db = TestDb::new().await;
    for i in 0..105 {
        pipeline(&db, &format!("p{i}")).await;
    }
    let page = db.list_pipelines(PipelineFilter::default()).await.unwrap();
    assert_eq!(page.len(), 100);
}

#[tokio::test]
async fn keyset_pages_cover_every_row_once_under_inserts() {
    let db = TestDb::new().await;
    let mut originals = Vec::new();
    for i in 0..23 {
        originals.push(pipeline(&db, &format!("p{i}")).await);
    }
    let mut seen: Vec<Uuid> = Vec::new();
    let mut after = None;
    let mut inserted = Vec::new();
    loop {
        let page = db
            .list_pipelines(PipelineFilter {
                limit: 5,
                after,
                ..PipelineFilter::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|p| p.id));
        after = Some(page.last().unwrap().id);
        // Rows created meanwhile sort after every existing row.
        if inserted.len() < 6 {
            inserted.push(pipeline(&db, "late").await);
        }
    }
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    for id in originals.iter().chain(&inserted) {
        assert!(unique.contains(id), "row {id} skipped");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted, seen,
        "time-ordered ids: pages follow (created_at, id)"
    );
}

// --- final context -------------------------------------------------------------

#[tokio::test]
async fn the_final_context_is_stored_and_replaced_with_an_event() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl").await;
    let before = row_counts(&db).await;
    let first = db
        .set_pipeline_final_context(p, &json!({"rows": 1}))
        .await
        .unwrap();
    assert_eq!(
        db.get_pipeline_execution(p).await.unwrap().final_context_id,
        Some(first)
    );
    assert_eq!(db.read_context(first).await.unwrap(), json!({"rows": 1}));
    let second = db.set_pipeline_final_context(p, &json!({})).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(db.read_context(second).await.unwrap(), json!({}));
    assert_not_found(db.read_context(first).await, "context");
    let after = row_counts(&db).await;
    assert_eq!(after.contexts, before.contexts + 1, "replaced, not added");
    assert_eq!(
        of_type(&events_of(&db, p).await, EventType::PipelineFinalContextSet).len(),
        2
    );

    assert_invalid(db.set_pipeline_final_context(p, &json!([1])).await, "value");
    assert_not_found(
        db.set_pipeline_final_context(Uuid::new_v4(), &json!({"a": 1}))
            .await,
        "pipeline execution",
    );
    assert_eq!(row_counts(&db).await, after);
}

// --- pruning -------------------------------------------------------------------

/// A pipeline with an initial context, `n` tasks each with an output
/// context, and a final context; finished as `finish` says.
async fn full_pipeline(db: &TestDb, n: usize, finish: Option<PipelineStatus>) -> Uuid {
    let p = db
        .create_pipeline_execution(NewPipelineExecution::new("full").context(json!({"in": 1})))
        .await
        .unwrap()
        .id;
    for task in tasks(db, p, "t", n, Ready).await {
        db.save_task_context(task.id, &json!({"out": task.task_name}))
            .await
            .unwrap();
    }
    db.set_pipeline_final_context(p, &json!({"final": true}))
        .await
        .unwrap();
    if let Some(status) = finish {
        db.update_pipeline_status(p, status, None).await.unwrap();
    }
    p
}

#[tokio::test]
async fn prune_removes_every_row_of_finished_pipelines_and_nothing_else() {
    let db = TestDb::new().await;
    let mut pruned = Vec::new();
    for status in [
        PipelineStatus::Completed,
        PipelineStatus::Failed,
        PipelineStatus::Completed,
        PipelineStatus::Completed,
        PipelineStatus::Failed,
    ] {
        pruned.push(full_pipeline(&db, 3, Some(status)).await);
    }
    let cancelled = full_pipeline(&db, 2, None).await;
    db.cancel_pipeline(cancelled, "stop").await.unwrap();
    pruned.push(cancelled);
    let empty_before = row_counts(&db).await;

    // Kept: running, pending, and a cancelled one with a task still running.
    let kept_running = full_pipeline(&db, 2, None).await;
    let kept_pending = db
        .create_pipeline_execution(NewPipelineExecution {
            status: PipelineStatus::Pending,
            ..NewPipelineExecution::new("pending")
        })
        .await
        .unwrap()
        .id;
    tasks(&db, kept_pending, "t", 2, NotStarted).await;
    let busy = full_pipeline(&db, 1, None).await;
    let busy_task = db.get_all_tasks_for_pipeline(busy).await.unwrap()[0].id;
    db.claim_for_runner(busy_task, Uuid::new_v4())
        .await
        .unwrap();
    db.mark_started(busy_task).await.unwrap();
    db.cancel_pipeline(busy, "stop").await.unwrap();
    let kept = [kept_running, kept_pending, busy];
    let cutoff = chrono::Utc::now() + Duration::seconds(1);
    let all_before = row_counts(&db).await;
    let kept_rows = RowCounts {
        pipelines: all_before.pipelines - empty_before.pipelines,
        tasks: all_before.tasks - empty_before.tasks,
        metadata: all_before.metadata - empty_before.metadata,
        contexts: all_before.contexts - empty_before.contexts,
        events: all_before.events - empty_before.events,
    };

    // Bad input writes nothing.
    assert_invalid(db.prune_pipelines(cutoff, 0).await, "batch_size");
    for instant in [
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
        te_core::toolkit::validate::earliest_instant() - Duration::microseconds(1),
    ] {
        assert_invalid(db.prune_pipelines(instant, 10).await, "finished_before");
    }
    assert_eq!(row_counts(&db).await, all_before);
    // Nothing finished before an early instant.
    let early = chrono::Utc::now() - Duration::days(1);
    assert_eq!(
        db.prune_pipelines(early, 10).await.unwrap(),
        PruneOutcome::default()
    );

    let outcome = db.prune_pipelines(cutoff, 2).await.unwrap();
    assert_eq!(
        outcome,
        PruneOutcome {
            pipelines: empty_before.pipelines as usize,
            tasks: empty_before.tasks as usize,
            // initial + final per pipeline, one output per task
            contexts: (empty_before.pipelines * 2 + empty_before.tasks) as usize,
            events: empty_before.events as usize,
        }
    );
    assert_eq!(
        row_counts(&db).await,
        kept_rows,
        "every row of the pruned ones"
    );
    for id in &pruned {
        assert_not_found(db.get_pipeline_execution(*id).await, "pipeline execution");
    }
    for id in kept {
        db.get_pipeline_execution(id).await.unwrap();
    }
    assert_eq!(db.get_by_id(busy_task).await.unwrap().status, Running);
    // Once the runner is done, the cancelled pipeline can go too.
    assert!(db.mark_completed(busy_task, None).await.unwrap());
    let later = db.prune_pipelines(cutoff, 100).await.unwrap();
    assert_eq!(later.pipelines, 1);
    assert_eq!(later.tasks, 1);
}

// --- races ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_racing_with_workers_claims_nothing_after_it_commits() {
    let db = TestDb::new().await;
    let (doomed, survivor, dal) = pipelines_to_race(&db, ("doomed", 300), ("survivor", 300)).await;

    let workers: Vec<_> = (0..4)
        .map(|w| {
            let dal = dal.clone();
            tokio::spawn(async move {
                let runner = Uuid::new_v4();
                loop {
                    let claimed = dal
                        .claim_ready_tasks_for_runner(runner, 3 + w)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    for task in claimed {
                        assert!(dal.mark_completed(task.id, Some(runner)).await.unwrap());
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let outcome = db.cancel_pipeline(doomed, "race").await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }

    let events = events_of(&db, doomed).await;
    let cancel_at = events
        .iter()
        .find(|e| e.event_type == EventType::PipelineStatusChanged)
        .unwrap()
        .sequence;
    assert!(
        of_type(&events, EventType::TaskClaimed)
            .iter()
            .all(|e| e.sequence < cancel_at),
        "a task of the cancelled pipeline was claimed after the cancel"
    );
    let statuses = db.count_tasks_by_status(Some(doomed)).await.unwrap();
    assert_eq!(statuses[&Skipped] as usize, outcome.skipped);
    assert_eq!(
        statuses[&Completed] + statuses[&Skipped],
        300,
        "every task ended: {statuses:?}"
    );
    assert_eq!(
        of_type(&events, EventType::TaskSkipped).len(),
        outcome.skipped
    );
    let survivors = db.count_tasks_by_status(Some(survivor)).await.unwrap();
    assert_eq!(survivors[&Completed], 300);
}

/// A write that makes a task `Ready` again, run by a second handle.
type Requeue =
    fn(TaskExecutionDal, Uuid) -> futures::future::BoxFuture<'static, Result<(), DalError>>;

/// `requeue` of a task whose attempt failed (`failed`) or is running, racing
/// with a cancel of its pipeline: it either commits first, and the cancel
/// then skips the task it made `Ready`, or it is refused or skips the task
/// itself; a cancelled pipeline never keeps a `Ready` task that nothing will
/// claim. On PostgreSQL `requeue` is made to read the pipeline before the
/// cancel commits and to write the task after the cancel has looked at it
/// (another connection holds the task's row until both are under way).
async fn requeue_racing_with_a_cancel(failed: bool, requeue: Requeue) {
    let db = TestDb::new().await;
    let p = pipeline(&db, "racing").await;
    let runner = Uuid::new_v4();
    let id = db
        .create(
            NewTaskExecution::new(p, "flaky")
                .status(Ready)
                .max_attempts(3),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        ids(&db.claim_ready_tasks_for_runner(runner, 1).await.unwrap()),
        [id]
    );
    if failed {
        assert!(db.mark_failed(id, "boom", Some(runner)).await.unwrap());
    }
    let dal = handle_with_pool(&db, 4).await;

    let holder = crate::common::LockHolder::take(&db, crate::common::Lock::Row(id));
    let requeued = tokio::spawn(requeue(dal.clone(), id));
    crate::common::until_waiting(&db, 1, || requeued.is_finished()).await;
    let cancel = tokio::spawn({
        let dal = dal.clone();
        async move { dal.cancel_pipeline(p, "race").await }
    });
    crate::common::until_waiting(&db, 2, || cancel.is_finished()).await;
    holder.release();
    let requeued = requeued.await.unwrap();
    let cancelled = cancel.await.unwrap().unwrap();

    assert_eq!(
        db.get_pipeline_execution(p).await.unwrap().status,
        PipelineStatus::Cancelled
    );
    let task = db.get_by_id(id).await.unwrap();
    assert_ne!(task.status, Ready, "a cancelled pipeline kept {task:?}");
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
    match requeued {
        // First: the cancel skipped what it made `Ready`.
        Ok(()) if cancelled.skipped == 1 => assert_eq!(task.status, Skipped),
        // Second: a recovery skipped the task itself.
        Ok(()) => assert_eq!((failed, task.status), (false, Skipped)),
        // Second: a retry is refused.
        Err(err) => {
            assert_illegal_pipeline(Err::<(), _>(err), p, PipelineStatus::Cancelled);
            assert_eq!(task.status, TaskStatus::Failed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_racing_with_a_cancel_never_leaves_a_ready_task() {
    requeue_racing_with_a_cancel(true, |dal, id| {
        Box::pin(async move { dal.schedule_retry(id, chrono::Utc::now(), 2).await })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recovery_racing_with_a_cancel_never_leaves_a_ready_task() {
    requeue_racing_with_a_cancel(false, |dal, id| {
        Box::pin(async move { dal.reset_task_for_recovery(id).await })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_state_reset_racing_with_a_cancel_never_leaves_a_ready_task() {
    requeue_racing_with_a_cancel(true, |dal, id| {
        Box::pin(async move { dal.reset_retry_state(id).await })
    })
    .await;
}

/// A task still running when its pipeline was cancelled, whose runner was
/// then lost: recovery skips it (nothing would claim it `Ready`), with one
/// `TaskSkipped` event; the retry state of a task of a cancelled pipeline is
/// not reset, and the refusal writes nothing.
#[tokio::test]
async fn recovery_after_a_cancel_skips_the_task_and_nothing_requeues_it() {
    let db = TestDb::new().await;
    let (p, id, _) = crate::common::claimed_in_new_pipeline(&db, "cancelled", "lost").await;
    assert_eq!(
        db.cancel_pipeline(p, "stop").await.unwrap(),
        CancelOutcome {
            skipped: 0,
            running: 1
        }
    );
    let before = events_of(&db, p).await.len();
    db.reset_task_for_recovery(id).await.unwrap();
    let task = db.get_by_id(id).await.unwrap();
    assert_eq!(task.status, Skipped);
    assert_eq!(task.recovery_attempts, 1);
    assert!(task.last_recovery_at.is_some() && task.completed_at.is_some());
    assert_eq!((task.claimed_by, task.heartbeat_at), (None, None));
    let events = events_of(&db, p).await;
    assert_eq!(events.len(), before + 1);
    assert_eq!(events[before].event_type, EventType::TaskSkipped);
    assert_eq!(events[before].task_execution_id, Some(id));
    assert!(task.error_details.as_deref().unwrap().contains("cancelled"));

    let before = row_counts(&db).await;
    assert_illegal_pipeline(db.reset_retry_state(id).await, p, PipelineStatus::Cancelled);
    assert_illegal_pipeline(
        db.schedule_retry(id, chrono::Utc::now(), 1).await,
        p,
        PipelineStatus::Cancelled,
    );
    // Nothing left to recover, and the refusals wrote nothing.
    assert!(matches!(
        db.reset_task_for_recovery(id).await,
        Err(DalError::IllegalTransition { .. })
    ));
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_by_id(id).await.unwrap().status, Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_resume_racing_with_claimers() {
    let db = TestDb::new().await;
    let (held, free, dal) = pipelines_to_race(&db, ("held", 200), ("free", 400)).await;
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let dal = dal.clone();
            let paused = paused.clone();
            tokio::spawn(async move {
                let mut after_pause: HashMap<Uuid, Uuid> = HashMap::new();
                loop {
                    // Read the flag before the claim starts: a claim that
                    // starts after the pause committed takes nothing of `held`.
                    let was_paused = paused.load(std::sync::atomic::Ordering::SeqCst);
                    let claimed = dal.claim_ready_task(4).await.unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    for task in claimed {
                        if was_paused {
                            after_pause.insert(task.id, task.pipeline_execution_id);
                        }
                        dal.mark_completed(task.id, None).await.unwrap();
                    }
                }
                after_pause
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    db.pause_pipeline(held).await.unwrap();
    paused.store(true, std::sync::atomic::Ordering::SeqCst);

    for claimer in claimers {
        let after_pause = claimer.await.unwrap();
        assert!(
            after_pause.values().all(|p| *p == free),
            "a task of the paused pipeline was claimed after the pause"
        );
    }
    let free_counts = db.count_tasks_by_status(Some(free)).await.unwrap();
    assert_eq!(free_counts[&Completed], 400);
    let held_counts = db.count_tasks_by_status(Some(held)).await.unwrap();
    let left = held_counts[&Ready];
    assert!(db.claim_ready_task(1_000).await.unwrap().is_empty());

    db.resume_pipeline(held).await.unwrap();
    let claimed = db.claim_ready_task(1_000).await.unwrap();
    assert_eq!(claimed.len() as i64, left);
    assert!(claimed.iter().all(|c| c.pipeline_execution_id == held));
}
