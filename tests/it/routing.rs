//! Routing, timing and parallelism limits: queues (claims of named queues
//! take only their tasks, walking the queue index), delayed tasks
//! (`run_after`, and `wait_for_ready` returning when one becomes due) and a
//! pipeline's `max_running` (never exceeded by any claim form under
//! concurrency, never holding back another pipeline).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{assert_invalid, claimed_ids, handle_with_pool, ids, row_counts};

/// The ids of the tasks a claim of up to `limit` tasks of `queues` takes.
async fn claimed_from(dal: &TaskExecutionDal, queues: &[&str], limit: usize) -> Vec<Uuid> {
    claimed_ids(dal.claim_ready_task_from(queues, limit).await)
}

/// A pipeline named `name`, limited to `max_running` when given.
async fn pipeline(dal: &TaskExecutionDal, name: &str, max_running: Option<i32>) -> Uuid {
    let mut new = NewPipelineExecution::new(name);
    new.max_running = max_running;
    dal.create_pipeline_execution(new).await.unwrap().id
}

/// `n` ready tasks of `pipeline_id` in `queue`, named `prefix-0000`, ...
async fn ready_in(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    queue: &str,
    prefix: &str,
    n: usize,
) -> Vec<TaskExecution> {
    dal.create_many(
        (0..n)
            .map(|i| {
                NewTaskExecution::new(pipeline_id, format!("{prefix}-{i:04}"))
                    .status(TaskStatus::Ready)
                    .queue(queue)
            })
            .collect(),
    )
    .await
    .unwrap()
}

/// `at` to the microsecond, as both backends store it.
fn in_micros(at: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(at, 6)
}

fn task_ids(tasks: &[TaskExecution]) -> Vec<Uuid> {
    tasks.iter().map(|t| t.id).collect()
}

// --- queues ----------------------------------------------------------------------

#[tokio::test]
async fn a_task_has_the_default_queue_unless_given_one_and_keeps_it() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let plain = db.create(NewTaskExecution::new(p, "plain")).await.unwrap();
    assert_eq!(plain.queue, "default");
    assert_eq!(plain.queue, NewTaskExecution::DEFAULT_QUEUE);
    assert_eq!(plain.run_after, None);
    let gpu = db
        .create(NewTaskExecution::new(p, "gpu").queue("gpü 🚀"))
        .await
        .unwrap();
    assert_eq!(gpu.queue, "gpü 🚀");
    assert_eq!(db.get_by_id(gpu.id).await.unwrap(), gpu);
    let many = db
        .create_many(vec![
            NewTaskExecution::new(p, "a").queue("x"),
            NewTaskExecution::new(p, "b"),
        ])
        .await
        .unwrap();
    assert_eq!(many[0].queue, "x");
    assert_eq!(many[1].queue, "default");
    for task in &many {
        assert_eq!(&db.get_by_id(task.id).await.unwrap(), task);
    }
}

#[tokio::test]
async fn claims_from_queues_take_only_tasks_of_those_queues_in_claim_order() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let cpu = ready_in(&db, p, "cpu", "cpu", 3).await;
    let gpu = ready_in(&db, p, "gpu", "gpu", 3).await;
    let other = ready_in(&db, p, "other", "other", 2).await;
    // A later gpu task with a higher priority comes first across queues.
    let urgent = db
        .create(
            NewTaskExecution::new(p, "urgent")
                .queue("gpu")
                .priority(5)
                .status(TaskStatus::Ready),
        )
        .await
        .unwrap();

    let got = db.claim_ready_task_from(&["gpu"], 2).await.unwrap();
    assert_eq!(ids(&got), [urgent.id, gpu[0].id]);
    assert!(got.iter().all(|c| c.queue == "gpu"));

    let runner = Uuid::new_v4();
    let got = db
        .claim_ready_tasks_for_runner_from(runner, &["cpu"], 1)
        .await
        .unwrap();
    assert_eq!(ids(&got), [cpu[0].id]);
    assert_eq!(got[0].queue, "cpu");
    assert_eq!(
        db.get_by_id(cpu[0].id).await.unwrap().claimed_by,
        Some(runner)
    );

    // Several queues (repeats ignored): one claim order across them.
    let got = db
        .claim_ready_task_from(&["gpu", "cpu", "gpu"], 10)
        .await
        .unwrap();
    assert_eq!(ids(&got), [cpu[1].id, cpu[2].id, gpu[1].id, gpu[2].id]);
    let got = db
        .claim_ready_tasks_for_runner_from(runner, &["cpu", "gpu", "nothing-here"], 10)
        .await
        .unwrap();
    assert!(got.is_empty(), "{got:?}");

    // The plain claim takes every queue.
    let rest = db.claim_ready_task(10).await.unwrap();
    assert_eq!(ids(&rest), task_ids(&other));
    assert!(rest.iter().all(|c| c.queue == "other"));
}

// --- delayed tasks -----------------------------------------------------------------

#[tokio::test]
async fn a_delayed_task_is_not_claimed_before_run_after() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let due = in_micros(Utc::now() + chrono::Duration::milliseconds(1_500));
    let delayed = db
        .create(
            NewTaskExecution::new(p, "later")
                .status(TaskStatus::Ready)
                .run_after(due),
        )
        .await
        .unwrap();
    assert_eq!(delayed.run_after, Some(due));
    let past = db
        .create(
            NewTaskExecution::new(p, "past")
                .status(TaskStatus::Ready)
                .queue("q")
                .run_after(Utc::now() - chrono::Duration::seconds(5)),
        )
        .await
        .unwrap();
    assert_eq!(claimed_ids(db.claim_ready_task(10).await), [past.id]);
    assert!(claimed_ids(db.claim_ready_task(10).await).is_empty());
    assert!(claimed_from(&db, &["default"], 10).await.is_empty());
    let runner = Uuid::new_v4();
    assert!(claimed_ids(db.claim_ready_tasks_for_runner(runner, 10).await).is_empty());
    while Utc::now() <= due {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(claimed_from(&db, &["default"], 10).await, [delayed.id]);
}

#[tokio::test]
async fn wait_for_ready_returns_when_a_delayed_task_becomes_due() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let delay = chrono::Duration::milliseconds(1_200);
    let due = Utc::now() + delay;
    // A ready task of queue `slow` that is not claimable before `at`.
    let delayed = |name: &'static str, at| {
        let new = NewTaskExecution::new(p, name).status(TaskStatus::Ready);
        db.create(new.queue("slow").run_after(at))
    };
    let task = delayed("later", due).await.unwrap();
    let waiter = handle_with_pool(&db, 2).await;

    // Nothing is written while it waits: only the timer can end the wait
    // before the long timeout.
    let began = Instant::now();
    assert!(
        waiter
            .wait_for_ready(Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "returned after {:?}",
        began.elapsed()
    );
    assert!(Utc::now() >= due, "woke before the task was due");
    assert_eq!(claimed_ids(waiter.claim_ready_task(1).await), [task.id]);

    // A wait for other queues is not woken by this queue's delayed task.
    let later = Utc::now() + chrono::Duration::seconds(4);
    delayed("later-2", later).await.unwrap();
    let began = Instant::now();
    assert!(
        !waiter
            .wait_for_ready_from(&["fast"], Duration::from_millis(1_500))
            .await
            .unwrap()
    );
    assert!(began.elapsed() >= Duration::from_millis(1_500));
    // The wait for its own queue returns when it becomes due.
    let began = Instant::now();
    assert!(
        waiter
            .wait_for_ready_from(&["fast", "slow"], Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(began.elapsed() < Duration::from_secs(30));
    assert!(Utc::now() >= later, "woke before the task was due");
    assert_eq!(
        waiter
            .claim_ready_task_from(&["slow"], 5)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn update_task_changes_queue_and_run_after() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let task = ready_in(&db, p, "default", "t", 1).await.remove(0);
    let later = in_micros(Utc::now() + chrono::Duration::hours(1));
    let update = |update: TaskUpdate| db.update_task(task.id, update);
    let moved = update(TaskUpdate {
        queue: Some("gpu".into()),
        run_after: Some(Some(later)),
        ..TaskUpdate::default()
    })
    .await
    .unwrap();
    assert_eq!(moved.queue, "gpu");
    assert_eq!(moved.run_after, Some(later));
    assert_eq!(db.get_by_id(task.id).await.unwrap(), moved);
    assert!(claimed_from(&db, &["gpu"], 1).await.is_empty());
    // Unchanged by an update that leaves them alone.
    let same = update(TaskUpdate {
        priority: Some(1),
        ..TaskUpdate::default()
    })
    .await
    .unwrap();
    assert_eq!((same.queue.as_str(), same.run_after), ("gpu", Some(later)));
    let cleared = update(TaskUpdate {
        run_after: Some(None),
        ..TaskUpdate::default()
    })
    .await
    .unwrap();
    assert_eq!(cleared.run_after, None);
    assert!(claimed_from(&db, &["default"], 1).await.is_empty());
    assert_eq!(claimed_from(&db, &["gpu"], 1).await, [task.id]);
}

// --- max_running ---------------------------------------------------------------------

#[tokio::test]
async fn a_pipeline_keeps_its_max_running() {
    let db = TestDb::new().await;
    let limited = db
        .create_pipeline_execution(NewPipelineExecution::new("wide").max_running(3))
        .await
        .unwrap();
    assert_eq!(limited.max_running, Some(3));
    assert_eq!(
        db.get_pipeline_execution(limited.id).await.unwrap(),
        limited
    );
    let free = pipeline(&db, "free", None).await;
    assert_eq!(
        db.get_pipeline_execution(free).await.unwrap().max_running,
        None
    );
}

#[tokio::test]
async fn a_batch_claim_takes_what_the_limit_allows_and_the_rest_elsewhere() {
    let db = TestDb::new().await;
    // The limited pipeline's tasks are older: first in claim order.
    let limited = pipeline(&db, "limited", Some(2)).await;
    let l = ready_in(&db, limited, "default", "l", 6).await;
    let free = pipeline(&db, "free", None).await;
    let f = ready_in(&db, free, "default", "f", 6).await;

    let got = db.claim_ready_task(5).await.unwrap();
    assert_eq!(ids(&got), [l[0].id, l[1].id, f[0].id, f[1].id, f[2].id]);
    // Full: the limited pipeline holds back no one, whatever the claim form.
    assert_eq!(claimed_ids(db.claim_ready_task(1).await), [f[3].id]);
    let runner = Uuid::new_v4();
    assert_eq!(
        claimed_ids(db.claim_ready_tasks_for_runner(runner, 1).await),
        [f[4].id]
    );
    assert_eq!(claimed_from(&db, &["default"], 5).await, [f[5].id]);
    assert!(claimed_ids(db.claim_ready_task(5).await).is_empty());

    // One ends: exactly one more of the limited pipeline is claimable.
    assert!(db.mark_completed(l[0].id, None).await.unwrap());
    assert_eq!(claimed_ids(db.claim_ready_task(5).await), [l[2].id]);
    assert!(claimed_ids(db.claim_ready_task(5).await).is_empty());
    // Whichever way a running task ends.
    db.mark_failed(l[1].id, "boom", None).await.unwrap();
    assert_eq!(
        claimed_ids(db.claim_ready_tasks_for_runner(runner, 5).await),
        [l[3].id]
    );
    // A retry makes it `Ready` again: the slot opens (its retry is not due).
    db.schedule_retry(l[2].id, Utc::now() + chrono::Duration::hours(1), 1)
        .await
        .unwrap();
    assert_eq!(claimed_ids(db.claim_ready_task(5).await), [l[4].id]);
    let running: Vec<_> = db
        .get_all_tasks_for_pipeline(limited)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.status == TaskStatus::Running)
        .collect();
    assert!(running.len() <= 2, "{running:?}");
}

#[tokio::test]
async fn a_limit_holds_from_the_first_limited_pipeline_on() {
    // Claims made while no pipeline is limited (PostgreSQL: the plain walk),
    // then a limited pipeline: every claim form counts its tasks at once.
    let db = TestDb::new().await;
    let free = pipeline(&db, "free", None).await;
    let f = ready_in(&db, free, "default", "f", 4).await;
    assert_eq!(ids(&db.claim_ready_task(1).await.unwrap()), [f[0].id]);
    assert_eq!(
        ids(&db.claim_ready_task_from(&["default"], 1).await.unwrap()),
        [f[1].id]
    );

    let limited = pipeline(&db, "limited", Some(1)).await;
    let l = ready_in(&db, limited, "default", "l", 3).await;
    let got = db.claim_ready_task(10).await.unwrap();
    assert_eq!(ids(&got), [f[2].id, f[3].id, l[0].id]);
    assert!(
        db.claim_ready_task_from(&["default"], 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
    // Its task ends: one more, and only one.
    assert!(db.mark_completed(l[0].id, None).await.unwrap());
    assert_eq!(
        ids(&db.claim_ready_task_from(&["default"], 10).await.unwrap()),
        [l[1].id]
    );
    assert!(db.claim_ready_task(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_reservation_counts_toward_the_limit() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "one-at-a-time", Some(1)).await;
    let t = ready_in(&db, p, "default", "t", 3).await;
    let runner = Uuid::new_v4();
    assert_eq!(
        db.claim_for_runner(t[1].id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );
    // The reservation fills the pipeline: no plain claim, no second
    // reservation; the runner itself still gets its reserved task.
    assert!(claimed_ids(db.claim_ready_task(3).await).is_empty());
    let before = row_counts(&db).await;
    assert_eq!(
        db.claim_for_runner(t[0].id, Uuid::new_v4()).await.unwrap(),
        RunnerClaimResult::AlreadyClaimed
    );
    assert_eq!(
        row_counts(&db).await,
        before,
        "a refused reservation writes nothing"
    );
    assert_eq!(
        claimed_ids(db.claim_ready_tasks_for_runner(runner, 3).await),
        [t[1].id]
    );
    // Renewing a held claim is not refused.
    assert_eq!(
        db.claim_for_runner(t[1].id, runner).await.unwrap(),
        RunnerClaimResult::Claimed
    );
    assert!(claimed_ids(db.claim_ready_task(3).await).is_empty());
    // Released and retried: the slot opens again.
    db.release_runner_claim(t[1].id).await.unwrap();
    db.schedule_retry(t[1].id, Utc::now() - chrono::Duration::seconds(1), 1)
        .await
        .unwrap();
    assert_eq!(claimed_ids(db.claim_ready_task(3).await), [t[0].id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_claimers_never_run_more_than_a_limit_of_two() {
    const TASKS: usize = 60;
    const CLAIMERS: usize = 8;
    let db = TestDb::new().await;
    let limited = pipeline(&db, "limited", Some(2)).await;
    let mut all = ready_in(&db, limited, "default", "a", TASKS / 2).await;
    all.extend(ready_in(&db, limited, "other", "b", TASKS / 2).await);
    let dal = handle_with_pool(&db, CLAIMERS + 2).await;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..CLAIMERS)
        .map(|worker| {
            let (dal, running, peak, done) = (
                dal.clone(),
                Arc::clone(&running),
                Arc::clone(&peak),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let runner = Uuid::new_v4();
                let mut mine = Vec::new();
                while done.load(Ordering::SeqCst) < TASKS {
                    // Every claim form, per task and in batches.
                    let claimed = match worker % 4 {
                        0 => dal.claim_ready_task(1).await,
                        1 => dal.claim_ready_task(4).await,
                        2 => dal.claim_ready_tasks_for_runner(runner, 3).await,
                        _ => {
                            dal.claim_ready_tasks_for_runner_from(runner, &["default", "other"], 2)
                                .await
                        }
                    }
                    .unwrap();
                    if claimed.is_empty() {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    // Counted after the claim committed, uncounted before the
                    // completion commits: never more than the database holds.
                    let now = running.fetch_add(claimed.len(), Ordering::SeqCst) + claimed.len();
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    for task in &claimed {
                        running.fetch_sub(1, Ordering::SeqCst);
                        assert!(dal.mark_completed(task.id, None).await.unwrap());
                        done.fetch_add(1, Ordering::SeqCst);
                        mine.push(task.id);
                    }
                }
                mine
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id), "task {id} ran twice");
        }
    }
    assert_eq!(seen, task_ids(&all).into_iter().collect::<HashSet<_>>());
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2,
        "{peak} tasks of a pipeline limited to 2 ran at once"
    );
    assert!(peak >= 1);
    let statuses: HashMap<_, _> = db
        .count_tasks_by_status(Some(limited))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(statuses.get(&TaskStatus::Completed), Some(&(TASKS as i64)));
}

// --- bad input ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_queues_limits_and_instants_are_invalid_input_and_write_nothing() {
    let db = TestDb::new().await;
    let p = pipeline(&db, "etl", None).await;
    let ready = ready_in(&db, p, "default", "t", 1).await.remove(0);
    let before = row_counts(&db).await;
    let too_early = chrono::DateTime::<Utc>::MIN_UTC;

    for bad in ["", "  ", "a\0b"] {
        assert_invalid(
            db.create(NewTaskExecution::new(p, "x").queue(bad)).await,
            "queue",
        );
        assert_invalid(
            db.create_many(vec![
                NewTaskExecution::new(p, "y"),
                NewTaskExecution::new(p, "z").queue(bad),
            ])
            .await,
            "queue",
        );
        assert_invalid(db.claim_ready_task_from(&[bad], 1).await, "queues");
        assert_invalid(db.claim_ready_task_from(&["ok", bad], 1).await, "queues");
        assert_invalid(
            db.claim_ready_tasks_for_runner_from(Uuid::new_v4(), &[bad], 1)
                .await,
            "queues",
        );
        assert_invalid(
            db.wait_for_ready_from(&[bad], Duration::from_millis(1))
                .await,
            "queues",
        );
        assert_invalid(
            db.update_task(
                ready.id,
                TaskUpdate {
                    queue: Some(bad.into()),
                    ..TaskUpdate::default()
                },
            )
            .await,
            "queue",
        );
    }
    assert_invalid(
        db.create_pipeline_execution(NewPipelineExecution::new("q").max_running(0))
            .await,
        "max_running",
    );
    assert_invalid(
        db.create_pipeline_execution(NewPipelineExecution::new("q").max_running(-3))
            .await,
        "max_running",
    );
    assert_invalid(db.claim_ready_task_from(&[], 1).await, "queues");
    assert_invalid(
        db.claim_ready_tasks_for_runner_from(Uuid::new_v4(), &[], 1)
            .await,
        "queues",
    );
    assert_invalid(
        db.wait_for_ready_from(&[], Duration::from_millis(1)).await,
        "queues",
    );
    assert_invalid(db.claim_ready_task_from(&["default"], 0).await, "limit");
    assert_invalid(
        db.create(NewTaskExecution::new(p, "x").run_after(too_early))
            .await,
        "run_after",
    );
    assert_invalid(
        db.update_task(
            ready.id,
            TaskUpdate {
                run_after: Some(Some(too_early)),
                ..TaskUpdate::default()
            },
        )
        .await,
        "run_after",
    );
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_by_id(ready.id).await.unwrap(), ready);
    // The last instant chrono holds is stored and read back unchanged.
    let late = chrono::DateTime::from_timestamp_micros(
        chrono::DateTime::<Utc>::MAX_UTC.timestamp_micros(),
    )
    .unwrap();
    let far = db
        .create(NewTaskExecution::new(p, "far").run_after(late))
        .await
        .unwrap();
    assert_eq!(db.get_by_id(far.id).await.unwrap().run_after, far.run_after);
}

// --- plans -------------------------------------------------------------------------------

/// Creates `n` tasks of `pipeline_id` in `queue` directly in `status`.
async fn tasks_in(
    dal: &TaskExecutionDal,
    pipeline_id: Uuid,
    queue: &str,
    prefix: &str,
    n: usize,
    status: TaskStatus,
) {
    dal.create_many(
        (0..n)
            .map(|i| {
                NewTaskExecution::new(pipeline_id, format!("{prefix}-{i:04}"))
                    .status(status)
                    .queue(queue)
            })
            .collect(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_claim_of_queues_walks_the_queue_index_in_order_without_a_sort() {
    let db = TestDb::new().await;
    // Thousands of older ready tasks of another queue, history, a limited
    // pipeline with room, on tables never analyzed: a claim of `gpu` or of
    // `gpu` and `io` must not read the other queue's entries.
    for i in 0..10 {
        let p = pipeline(&db, &format!("bulk-{i}"), None).await;
        tasks_in(&db, p, "cpu", "done", 100, TaskStatus::Completed).await;
        tasks_in(&db, p, "cpu", "ready", 300, TaskStatus::Ready).await;
    }
    let p = pipeline(&db, "gpu", None).await;
    tasks_in(&db, p, "gpu", "g", 200, TaskStatus::Ready).await;
    tasks_in(&db, p, "io", "i", 200, TaskStatus::Ready).await;
    let limited = pipeline(&db, "limited", Some(1_000)).await;
    tasks_in(&db, limited, "gpu", "lg", 50, TaskStatus::Ready).await;
    let backend = db.backend();
    let runner = Uuid::new_v4();
    for analyzed in [false, true] {
        if analyzed && backend == Backend::Postgres {
            db.run(|conn| {
                use diesel::RunQueryDsl;
                Ok(diesel::sql_query("ANALYZE").execute(conn).map(drop)?)
            })
            .await
            .unwrap();
        }
        for queues in [&["gpu"][..], &["gpu", "io"][..]] {
            for (limit, who) in [(1, None), (32, None), (1, Some(runner)), (32, Some(runner))] {
                let plan = db
                    .run(move |conn| {
                        te_claiming::explain_claim_from(conn, limit, who, Some(queues))
                    })
                    .await
                    .unwrap();
                let what = format!("analyzed {analyzed}, {queues:?}, limit {limit}");
                let text = plan.lines.join("\n");
                match backend {
                    Backend::Sqlite => {
                        assert!(
                            text.contains("task_executions_queue_ready_idx"),
                            "{what}: {text}"
                        );
                        assert!(
                            !text.contains("task_executions_ready_idx"),
                            "{what}: {text}"
                        );
                        assert!(
                            !text.contains("USE TEMP B-TREE FOR ORDER BY"),
                            "{what}: {text}"
                        );
                        assert!(
                            !text.contains("task_executions_status_idx"),
                            "{what}: {text}"
                        );
                    }
                    Backend::Postgres => {
                        assert!(text.contains("te_claim_candidates"), "{what}: {text}");
                        let reads = plan.reads.expect("PostgreSQL reports what the claim read");
                        assert_eq!(reads.claimed as i64, limit, "{what}: {reads:?}");
                        assert_eq!(reads.ready_index_entries, 0, "{what}: {reads:?}");
                        assert_eq!(reads.sequential_scans, 0, "{what}: {reads:?}");
                        // One walk per queue, each stopped at the limit.
                        let most = limit * queues.len() as i64 * 2;
                        assert!(
                            reads.queue_index_entries <= most,
                            "{what}: {reads:?}, more than {most} entries of the queue index"
                        );
                    }
                }
            }
        }
    }
}
