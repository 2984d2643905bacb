//! Two OS processes claiming from one database (one SQLite file, or one
//! PostgreSQL database) never claim the same task, and together claim every
//! task.
//!
//! The test re-runs its own binary twice as child processes, selecting only
//! itself, with `TE_CLAIM_CHILD_*` set: in a child the same test function
//! claims until nothing is left and writes the ids it claimed to a file. Both
//! children wait for a go signal (a file) before claiming, so that their
//! claims overlap.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use te_testkit::TestDb;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{claim_until_empty, events, ready_pipeline, task_statuses};

const TASKS: usize = 2_000;
const CHILDREN: usize = 2;
/// Concurrent claimers inside each child, each on its own pooled connection.
const CLAIMERS_PER_CHILD: usize = 4;
const BATCH: usize = 5;
/// How long to wait for a child to get ready before giving up (a hung child
/// must not hang the suite); never an assertion on speed.
const PATIENCE: Duration = Duration::from_secs(120);

const CHILD_URL: &str = "TE_CLAIM_CHILD_URL";
const CHILD_DIR: &str = "TE_CLAIM_CHILD_DIR";
const CHILD_INDEX: &str = "TE_CLAIM_CHILD_INDEX";
/// The full name of the test below inside the `it` binary, which the children
/// select with `--exact`: it must follow the module's path.
const TEST_NAME: &str = "claiming_processes::two_processes_claim_each_task_exactly_once";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_claim_each_task_exactly_once() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
        let index: usize = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
        child(&url, &dir, index).await;
        return;
    }

    let db = TestDb::new().await;
    ready_pipeline(&db, TASKS).await;

    let scratch = Scratch::new();
    let dir = scratch.0.clone();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..CHILDREN)
        .map(|index| {
            Command::new(&exe)
                .args([TEST_NAME, "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD_URL, db.url())
                .env(CHILD_DIR, &dir)
                .env(CHILD_INDEX, index.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    // Release both children at once, when both are connected.
    let start = Instant::now();
    while !(0..CHILDREN).all(|i| dir.join(format!("ready-{i}")).exists()) {
        for (i, c) in children.iter_mut().enumerate() {
            if let Some(status) = c.try_wait().unwrap() {
                panic!("child {i} exited before it was ready: {status}");
            }
        }
        assert!(start.elapsed() < PATIENCE, "the children did not get ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::write(dir.join("go"), b"").unwrap();

    let mut seen = HashSet::new();
    for (index, c) in children.into_iter().enumerate() {
        let output = tokio::task::spawn_blocking(move || c.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            output.status.success(),
            "child {index} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        // Confirm the child really ran the claiming test.
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("1 passed"),
            "child {index} ran no test:\n{stdout}"
        );
        for id in read_ids(&dir.join(format!("claimed-{index}"))) {
            assert!(seen.insert(id), "task {id} was claimed by two claimers");
        }
    }
    assert_eq!(seen.len(), TASKS, "every task was claimed");

    let statuses = task_statuses(&db).await;
    let claimed_events: Vec<Option<Uuid>> = events(&db, None, Some(EventType::TaskClaimed))
        .await
        .into_iter()
        .map(|e| e.task_execution_id)
        .collect();
    assert_eq!(statuses.len(), TASKS);
    for (id, status) in statuses {
        assert_eq!(status, TaskStatus::Running, "task {id}");
        assert!(seen.contains(&id));
    }
    assert_eq!(
        claimed_events.len(),
        TASKS,
        "one TaskClaimed event per task"
    );
    let distinct: HashSet<_> = claimed_events.into_iter().collect();
    assert_eq!(distinct.len(), TASKS);
}

/// A child process: connect, signal ready, wait for go, claim until nothing
/// is left with several claimers, write the claimed ids.
async fn child(url: &str, dir: &Path, index: usize) {
    let dal =
        TaskExecutionDal::connect_with(DalConfig::new(url).max_connections(CLAIMERS_PER_CHILD))
            .await
            .unwrap();
    std::fs::write(dir.join(format!("ready-{index}")), b"").unwrap();
    let start = Instant::now();
    while !dir.join("go").exists() {
        assert!(start.elapsed() < PATIENCE, "no go signal");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let claimers: Vec<_> = (0..CLAIMERS_PER_CHILD)
        .map(|claimer| {
            let dal = dal.clone();
            tokio::spawn(async move {
                let runner = (claimer % 2 == 1).then(Uuid::new_v4);
                claim_until_empty(&dal, runner, BATCH).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for claimer in claimers {
        ids.extend(claimer.await.unwrap());
    }
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    // Written under a temporary name and renamed: the parent never reads half a file.
    let tmp = dir.join(format!("claimed-{index}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join(format!("claimed-{index}"))).unwrap();
}

/// A scratch directory for the children's files, removed when dropped (also
/// when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("te-claim-processes-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_ids(path: &Path) -> Vec<Uuid> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}
