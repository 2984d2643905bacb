//! `te demo` run as a process: with a small workload it passes its invariant
//! check on the backend `TE_TEST_BACKEND` selects, `te status` then shows
//! every task finished, and the default run uses a SQLite file in the current
//! directory, recreated each run, with the same results for the same seed.

use std::path::Path;

mod common;
use common::{succeeded, te_in};

use task_execution_dal::prelude::*;
use te_testkit::{TestDb, backend_from_env};

/// A workload small enough for a test.
const SMALL: &[&str] = &["--pipelines", "5", "--workers", "3"];

/// The value of the summary row `what`.
fn result<'a>(summary: &'a str, what: &str) -> &'a str {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(what).filter(|rest| rest.starts_with("  ")))
        .unwrap_or_else(|| panic!("no `{what}` row in:\n{summary}"))
        .trim()
}

/// How many tasks the demo says it created (from its title line).
fn tasks_created(summary: &str) -> u64 {
    let (_, rest) = summary.split_once(" pipelines (").expect("title line");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// Checks the whole-database `te status`: nothing unfinished, `total` tasks.
fn assert_all_finished(status: &str, total: u64) {
    for unfinished in ["NotStarted", "Ready", "Running"] {
        let count = result(status, unfinished);
        assert_eq!(count, "0", "{unfinished} in:\n{status}");
    }
    assert_eq!(result(status, "total"), total.to_string(), "{status}");
    assert!(status.contains("all finished"), "{status}");
}

/// A database for the demo on the backend `TE_TEST_BACKEND` selects, and its
/// URL: a fresh PostgreSQL database (dropped with the returned `TestDb`), or a
/// SQLite file in `dir`, which the demo creates.
async fn demo_database(dir: &Path) -> (Option<TestDb>, String) {
    match backend_from_env() {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", dir.join("demo.db").display());
            (None, url)
        }
        Backend::Postgres => {
            let db = TestDb::new().await;
            let url = db.url().to_owned();
            (Some(db), url)
        }
    }
}

/// Runs `te demo` with `args` on a database [`demo_database`] makes in
/// `dir`; checks that it succeeded and that its invariants hold. Returns
/// the database (keep it until the test ends), its URL and the summary.
async fn demo_on_database(dir: &Path, args: &[&str]) -> (Option<TestDb>, String, String) {
    let (db, url) = demo_database(dir).await;
    let args = [&["demo", "--database-url", url.as_str()], args].concat();
    let summary = succeeded(&te_in(dir, &args));
    assert!(summary.contains("all invariants hold"), "{summary}");
    (db, url, summary)
}

/// The line of `summary` that starts with `check`.
fn check_line<'a>(summary: &'a str, check: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.starts_with(check))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{summary}"))
}

#[tokio::test]
async fn demo_passes_its_invariants_and_leaves_every_task_finished() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, url, summary) = demo_on_database(dir.path(), SMALL).await;
    assert_eq!(result(&summary, "tasks not finished"), "0");
    assert!(!summary.contains("FAILED"), "{summary}");

    let status = succeeded(&te_in(dir.path(), &["status", "--database-url", &url]));
    assert_all_finished(&status, tasks_created(&summary));

    // The summary names a pipeline to look at; all of its tasks are finished.
    let (_, hint) = summary.split_once("te status ").expect("a pipeline hint");
    let pipeline = hint.split_whitespace().next().unwrap();
    let table = succeeded(&te_in(
        dir.path(),
        &["status", pipeline, "--database-url", &url],
    ));
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("TASK"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.len() >= 8, "{table}");
    for row in rows {
        // TASK, QUEUE, STATUS, ...
        let status: TaskStatus = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(status.is_terminal(), "{row}");
    }
    assert!(table.contains("all finished"), "{table}");
}

#[test]
fn default_demo_recreates_its_sqlite_file_and_repeats_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let args = [&["demo", "--seed", "7"], SMALL].concat();
    let first = succeeded(&te_in(dir.path(), &args));
    let second = succeeded(&te_in(dir.path(), &args));
    for summary in [&first, &second] {
        assert!(summary.contains("all invariants hold"), "{summary}");
        assert!(summary.contains("sqlite://te-demo.db"), "{summary}");
    }
    // The same seed makes the same decisions, whatever the scheduling.
    for what in [
        "pipelines completed / failed",
        "tasks completed",
        "tasks failed",
        "tasks skipped",
    ] {
        assert_eq!(result(&first, what), result(&second, what), "{what}");
    }
    // The file was recreated: it holds the second run's tasks only.
    let url = format!("sqlite://{}", dir.path().join("te-demo.db").display());
    let status = succeeded(&te_in(dir.path(), &["status", "--database-url", &url]));
    assert_all_finished(&status, tasks_created(&second));
}

#[test]
fn demo_with_everything_failing_fails_every_pipeline_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let summary = succeeded(&te_in(
        dir.path(),
        &[
            "demo",
            "--pipelines",
            "3",
            "--workers",
            "2",
            "--failure-rate",
            "1",
            "--no-crash",
        ],
    ));
    assert!(summary.contains("all invariants hold"), "{summary}");
    assert_eq!(result(&summary, "pipelines completed / failed"), "0 / 3");
    assert_eq!(result(&summary, "tasks completed"), "0");
    assert_eq!(result(&summary, "tasks failed"), "3", "only the roots ran");
    assert_eq!(result(&summary, "retries scheduled"), "6");
}

#[tokio::test]
async fn demo_cancel_skips_unstarted_tasks_and_claims_nothing_after_the_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--cancel", "2", "--pipelines", "8", "--workers", "3"];
    let (_db, _, summary) = demo_on_database(dir.path(), &args).await;
    let cancelled = result(&summary, "pipelines cancelled mid-run");
    assert!(
        cancelled.starts_with("2 (2 asked, 2 ended cancelled)"),
        "{summary}"
    );
    for check in [
        "cancelled pipelines: unstarted tasks skipped",
        "cancelled pipelines: no task claimed after the cancel",
    ] {
        assert!(result(&summary, check).starts_with("ok"), "{summary}");
    }
    assert_eq!(result(&summary, "tasks not finished"), "0");
}

#[tokio::test]
async fn demo_with_two_queues_keeps_workers_to_their_queue_and_pipelines_to_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let args = [&["--queues", "2"], SMALL].concat();
    let (_db, url, summary) = demo_on_database(dir.path(), &args).await;
    let queue_check = check_line(&summary, "no worker took a task of another queue");
    assert!(queue_check.contains(" ok "), "{queue_check}");
    assert!(queue_check.contains("0 of another queue"), "{queue_check}");
    let limit_check = check_line(
        &summary,
        "no pipeline ever ran more tasks at once than its max_running",
    );
    assert!(limit_check.contains(" ok "), "{limit_check}");
    assert!(limit_check.contains("limit 2"), "{limit_check}");

    // `te pipelines` shows the limit and both queues; `te status` of one
    // pipeline its limit and each task's queue.
    let listed = succeeded(&te_in(dir.path(), &["pipelines", "--database-url", &url]));
    let row = listed.lines().nth(1).expect("a pipeline row");
    assert!(row.contains("queue-0,queue-1"), "{listed}");
    assert!(listed.lines().next().unwrap().contains("LIMIT"), "{listed}");
    let id = row.split_whitespace().next().unwrap();
    let table = succeeded(&te_in(dir.path(), &["status", id, "--database-url", &url]));
    assert!(table.contains("at most 2 tasks running at once"), "{table}");
    assert!(
        table.contains("queue-0") && table.contains("queue-1"),
        "{table}"
    );

    // Fewer workers than queues would leave a queue unserved: refused.
    let refused = te_in(
        dir.path(),
        &[
            "demo",
            "--database-url",
            url.as_str(),
            "--queues",
            "4",
            "--workers",
            "2",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("4 queues need at least as many workers"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
