//! Invariants under faults and load, on both backends: a runner process killed
//! with SIGKILL mid-work is recovered from, connections that die mid-drain
//! (terminated PostgreSQL backends, a write that panics half-way) leave
//! nothing half-written, and 32 workers drain a large queue with no task
//! handed out twice, none lost and no lock error reaching a caller.
//!
//! Sizes: `TE_LOAD_TASKS` (default 2,000; `cargo xtask test --long` sets 20,000).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::bind;
use te_testkit::TestDb;
use uuid::Uuid;

use crate::common::{events, task_statuses, terminate_backends};

use task_execution_dal::prelude::*;

/// How long to wait for a child to make progress before giving up (a hung
/// child must not hang the suite); never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(120);

async fn ready_tasks(db: &TestDb, name: &str, n: usize) -> Uuid {
    let pid = db
        .create_pipeline_execution(NewPipelineExecution::new(name))
        .await
        .unwrap()
        .id;
    for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
        db.create_many(
            chunk
                .iter()
                .map(|i| {
                    NewTaskExecution::new(pid, format!("task-{i:06}")).status(TaskStatus::Ready)
                })
                .collect(),
        )
        .await
        .unwrap();
    }
    pid
}

/// Per task: its status and how many `TaskClaimed` and `TaskCompleted` events it has.
async fn ledger(dal: &TaskExecutionDal) -> HashMap<Uuid, (TaskStatus, usize, usize)> {
    let mut out: HashMap<Uuid, (TaskStatus, usize, usize)> = task_statuses(dal)
        .await
        .into_iter()
        .map(|(id, s)| (id, (s, 0, 0)))
        .collect();
    let claimed = events(dal, None, Some(EventType::TaskClaimed)).await;
    let completed = events(dal, None, Some(EventType::TaskCompleted)).await;
    for event in claimed.iter().chain(&completed) {
        let entry = out
            .get_mut(&event.task_execution_id.unwrap())
            .expect("an event of a known task");
        match event.event_type {
            EventType::TaskClaimed => entry.1 += 1,
            _ => entry.2 += 1,
        }
    }
    out
}

/// Claims and completes until nothing is `Ready`; returns the ids it completed.
async fn drain(dal: &TaskExecutionDal) -> Vec<Uuid> {
    let mut done = Vec::new();
    loop {
        let claimed = dal.claim_ready_task(50).await.unwrap();
        if claimed.is_empty() {
            return done;
        }
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
        assert_eq!(
            dal.mark_completed_many(ids.clone(), None).await.unwrap(),
            ids.len()
        );
        done.extend(ids);
    }
}

/// Where a child process started by [`spawn_child`] finds its database URL.
const CHILD_URL: &str = "TE_CHILD_URL";
/// Where it finds the id (a runner's or a pipeline's) it works with.
const CHILD_ID: &str = "TE_CHILD_ID";

/// Runs this binary's test `test` alone, in a child process given the
/// database `url` and `id` (read back by [`child_args`]), its output to
/// `stdout` (`--nocapture`: what it prints goes there at once).
fn spawn_child(test: &str, url: &str, id: Uuid, stdout: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_URL, url)
        .env(CHILD_ID, id.to_string())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// In a child process started by [`spawn_child`], a handle on the database
/// it was given, and the id; `None` in the test process itself.
async fn child_args() -> Option<(TaskExecutionDal, Uuid)> {
    let url = std::env::var(CHILD_URL).ok()?;
    let dal = TaskExecutionDal::connect(&url).await.unwrap();
    Some((dal, std::env::var(CHILD_ID).unwrap().parse().unwrap()))
}

/// Kills `child` with SIGKILL as soon as `done` says it has done enough,
/// asserting that it is still running until then and makes progress within
/// [`PATIENCE`].
async fn kill_once<F: Future<Output = bool>>(child: &mut Child, mut done: impl FnMut() -> F) {
    let started = Instant::now();
    while !done().await {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited before it was killed"
        );
        assert!(started.elapsed() < PATIENCE, "the child made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

// ---------------------------------------------------------------- crash

const CRASH_TASKS: usize = 300;
const CRASH_TEST: &str =
    "crash_and_load::a_runner_killed_mid_work_is_recovered_and_no_task_runs_twice";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_work_is_recovered_and_no_task_runs_twice() {
    if let Some((dal, runner)) = child_args().await {
        // The child: claim as the runner and complete, slowly, until killed.
        // It claims the next batch before it completes the previous one, so
        // that it holds claims whenever it is killed.
        let mut held = Vec::new();
        loop {
            let claimed = dal.claim_ready_tasks_for_runner(runner, 4).await.unwrap();
            for task in held.drain(..) {
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert!(dal.mark_completed(task, Some(runner)).await.unwrap());
            }
            if claimed.is_empty() {
                return;
            }
            held.extend(claimed.into_iter().map(|c| c.id));
        }
    }

    let db = TestDb::new().await;
    ready_tasks(&db, "crash", CRASH_TASKS).await;
    let runner = Uuid::new_v4();
    let mut child = spawn_child(CRASH_TEST, db.url(), runner, Stdio::null());

    // Kill it (SIGKILL) once it has done some of the work, none of it cleanly.
    let watched = &db;
    kill_once(&mut child, || async move {
        let counts = watched.count_tasks_by_status(None).await.unwrap();
        counts.get(&TaskStatus::Completed).copied().unwrap_or(0) >= 20
    })
    .await;
    let completed_by_child = db.count_tasks_by_status(None).await.unwrap()[&TaskStatus::Completed];
    assert!(
        (completed_by_child as usize) < CRASH_TASKS,
        "killed mid-work"
    );

    // The parent finds the dead runner's claims (older than a moment) and
    // resets them. On PostgreSQL a statement the child sent just before it
    // died still runs to its end (a single statement commits on its own), so
    // the parent waits for such a statement before it looks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stale = db
        .find_stale_claims(Duration::from_millis(10))
        .await
        .unwrap();
    assert!(!stale.is_empty(), "the killed runner held claims");
    for claim in &stale {
        assert_eq!(claim.claimed_by, runner);
        db.reset_task_for_recovery(claim.task_id).await.unwrap();
    }
    // Its late completions are fenced off.
    for claim in &stale {
        assert!(
            !db.mark_completed(claim.task_id, Some(runner))
                .await
                .unwrap()
        );
    }
    let drained = drain(&db).await;
    // Counted from the log, after the drain: the child's last completion may
    // have committed after the kill.
    let completed_by_child = events(&db, None, Some(EventType::TaskCompleted))
        .await
        .into_iter()
        .filter(|e| e.runner_id == Some(runner))
        .count();
    assert_eq!(
        drained.len() + completed_by_child,
        CRASH_TASKS,
        "every task not completed by the child is completed by the parent"
    );

    let ledger = ledger(&db).await;
    assert_eq!(ledger.len(), CRASH_TASKS, "no task lost");
    for (id, (status, _claimed, completed)) in ledger {
        assert_eq!(status, TaskStatus::Completed, "task {id} is terminal");
        assert_eq!(completed, 1, "task {id} completed exactly once");
    }
}

// ------------------------------------------------------ dropped connections

const DROP_TASKS: usize = 600;
const DROP_WORKERS: usize = 6;

/// A write that changes a task and then panics before it commits.
async fn half_write_then_panic(dal: &TaskExecutionDal) -> DalError {
    dal.write(|conn| -> Result<(), DalError> {
        let victim: Option<Uuid> = task_executions::table
            .filter(task_executions::status.eq(TaskStatus::Ready))
            .select(task_executions::id)
            .first(conn)
            .optional()?;
        if let Some(id) = victim {
            diesel::update(task_executions::table.find(bind::id(id)))
                .set(task_executions::status.eq(TaskStatus::Completed))
                .execute(conn)?;
        }
        panic!("the process dies half-way through a transaction");
    })
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_dying_mid_drain_leave_nothing_half_written_and_the_drain_completes() {
    let db = TestDb::new().await;
    ready_tasks(&db, "drop", DROP_TASKS).await;
    let dal = TaskExecutionDal::connect_with(
        DalConfig::new(db.url())
            .max_connections(DROP_WORKERS)
            .acquire_timeout(Duration::from_secs(30)),
    )
    .await
    .unwrap();

    let failures = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..DROP_WORKERS)
        .map(|_| {
            let (dal, failures) = (dal.clone(), failures.clone());
            tokio::spawn(async move {
                let mut idle_rounds = 0;
                loop {
                    let claimed = match dal.claim_ready_task(3).await {
                        Ok(c) => c,
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    if claimed.is_empty() {
                        idle_rounds += 1;
                        if idle_rounds > 3 {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    for task in claimed {
                        // A failed completion leaves the task Running, to be recovered.
                        if dal.mark_completed(task.id, None).await.is_err() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();

    // Mid-drain: kill the connections (PostgreSQL) and panic inside writes
    // (both backends), several times.
    let mut terminated = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        if db.backend() == Backend::Postgres {
            terminated += terminate_backends(&db).await;
        }
        // It fails by its panic or, on PostgreSQL, by a connection that was
        // terminated under it; it never succeeds.
        let err = half_write_then_panic(&dal).await;
        assert!(
            matches!(
                err,
                DalError::Interrupted(te_core::Interruption::Panicked(_))
            ) || (db.backend() == Backend::Postgres && matches!(err, DalError::Database(_))),
            "{err:?}"
        );
    }
    for w in workers {
        w.await.unwrap();
    }
    if db.backend() == Backend::Postgres {
        assert!(terminated >= 1, "the pool's connections were terminated");
    }

    // Nothing half-written: every task is where its events say it is.
    for (id, (status, claimed, completed)) in ledger(&db).await {
        match status {
            TaskStatus::Ready => assert_eq!((claimed, completed), (0, 0), "task {id}"),
            TaskStatus::Running => assert_eq!((claimed, completed), (1, 0), "task {id}"),
            TaskStatus::Completed => assert_eq!((claimed, completed), (1, 1), "task {id}"),
            other => panic!("task {id} is {other}"),
        }
    }

    // The pool recovered: the calls that failed are recovered and the drain completes.
    for task in dal.get_orphaned_tasks().await.unwrap() {
        dal.reset_task_for_recovery(task.id).await.unwrap();
    }
    drain(&dal).await;
    let ledger = ledger(&db).await;
    assert_eq!(ledger.len(), DROP_TASKS, "no task lost");
    for (id, (status, _, completed)) in ledger {
        assert_eq!(status, TaskStatus::Completed, "task {id}");
        assert_eq!(completed, 1, "task {id} completed exactly once");
    }
    eprintln!(
        "dropped connections ({}): {terminated} backends terminated, {} calls failed and were recovered",
        db.backend(),
        failures.load(Ordering::Relaxed)
    );
}

// ------------------------------------------------------------------ load

const LOAD_WORKERS: usize = 32;

fn load_tasks() -> usize {
    std::env::var("TE_LOAD_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_workers_drain_the_queue_with_no_duplicate_no_loss_and_no_lock_error() {
    let tasks = load_tasks();
    let db = TestDb::new().await;
    ready_tasks(&db, "load", tasks).await;
    let dal = db.dal().clone();

    let started = Instant::now();
    let workers: Vec<_> = (0..LOAD_WORKERS)
        .map(|w| {
            let dal = dal.clone();
            tokio::spawn(async move {
                let runner = (w % 2 == 1).then(Uuid::new_v4);
                let mut mine = Vec::new();
                loop {
                    // Any error fails the test: no "database is locked", no timeout.
                    let claimed = match runner {
                        Some(r) => dal.claim_ready_tasks_for_runner(r, 10).await,
                        None => dal.claim_ready_task(10).await,
                    }
                    .unwrap_or_else(|e| panic!("a claim failed under load: {e}"));
                    if claimed.is_empty() {
                        return mine;
                    }
                    let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
                    let n = dal
                        .mark_completed_many(ids.clone(), runner)
                        .await
                        .unwrap_or_else(|e| panic!("a completion failed under load: {e}"));
                    assert_eq!(
                        n,
                        ids.len(),
                        "every claimed task is completed by its claimer"
                    );
                    mine.extend(ids);
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for w in workers {
        for id in w.await.unwrap() {
            if !seen.insert(id) {
                duplicates += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(duplicates, 0, "no task was handed out twice");
    assert_eq!(seen.len(), tasks, "no task was lost");
    let ledger = ledger(&db).await;
    assert_eq!(ledger.len(), tasks);
    for (id, (status, claimed, completed)) in ledger {
        assert_eq!(
            (status, claimed, completed),
            (TaskStatus::Completed, 1, 1),
            "task {id}"
        );
    }
    eprintln!(
        "load ({}): {tasks} tasks, {LOAD_WORKERS} workers, {elapsed:.2?}, duplicates={duplicates}",
        db.backend()
    );
}

// ----------------------------------------------------- killed while writing

const WRITER_TEST: &str =
    "crash_and_load::a_process_killed_while_writing_loses_nothing_it_was_told";

/// The durability the default settings give (SQLite: WAL with `synchronous =
/// NORMAL`): every write acknowledged to a process that is then killed
/// with SIGKILL is in the database afterwards. An operating-system crash
/// is another matter (README, "Durability").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_while_writing_loses_nothing_it_was_told() {
    use std::io::{BufRead, BufReader, Write};
    if let Some((dal, pipeline)) = child_args().await {
        // The child: create tasks one by one, printing each id once its
        // write is acknowledged, until killed.
        let mut out = std::io::stdout().lock();
        for i in 0.. {
            let task = dal
                .create(NewTaskExecution::new(pipeline, format!("w-{i:06}")))
                .await
                .unwrap();
            writeln!(out, "{}", task.id).unwrap();
            out.flush().unwrap();
        }
        return;
    }

    let db = TestDb::new().await;
    let pipeline = db
        .create_pipeline_execution(NewPipelineExecution::new("writer"))
        .await
        .unwrap()
        .id;
    let mut child = spawn_child(WRITER_TEST, db.url(), pipeline, Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    let acknowledged = std::thread::spawn(move || {
        // Every line that parses as an id is an acknowledged write; the
        // test harness's own lines do not parse.
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.trim().parse::<Uuid>().ok())
            .collect::<Vec<Uuid>>()
    });
    let watched = &db;
    kill_once(&mut child, || async move {
        let tasks = watched.get_all_tasks_for_pipeline(pipeline).await.unwrap();
        tasks.len() >= 200
    })
    .await;
    let acknowledged = acknowledged.join().unwrap();
    assert!(
        acknowledged.len() >= 100,
        "{} acknowledged",
        acknowledged.len()
    );

    // A reader opened after the kill sees every acknowledged write.
    let reader = TaskExecutionDal::connect(db.url()).await.unwrap();
    let stored: HashSet<Uuid> = reader
        .get_all_tasks_for_pipeline(pipeline)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let lost: Vec<&Uuid> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost", lost.len());
}
