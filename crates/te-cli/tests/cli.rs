//! `te` run as a process: usage errors, bad URLs, unreachable servers,
//! unmigrated databases and unknown pipelines fail with one readable line;
//! `te migrate` and `te recover` do their job (on the backend
//! `TE_TEST_BACKEND` selects, where a database is involved).

use std::process::{Command, Output};

mod common;
use common::{command, succeeded, te};

use task_execution_dal::prelude::*;
use te_testkit::{TestDb, backend_from_env};
use uuid::Uuid;

/// Asserts that `te` failed the way a user should see it fail: a non-zero
/// exit and one line on stderr starting with `error:`, no panic, no
/// backtrace. Returns that line.
fn clean_failure(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "te succeeded; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Runs `te command --database-url url`, which must fail as
/// [`clean_failure`] says; returns its error line.
fn fails_on(command: &str, url: &str) -> String {
    clean_failure(&te(&[command, "--database-url", url]))
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = te(&["demo", "--bogus"]);
    let err = clean_failure(&out);
    assert!(err.contains("--bogus"), "{err}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn out_of_range_values_are_rejected_by_name() {
    let cases: [&[&str]; 4] = [
        &["demo", "--failure-rate", "2"],
        &["demo", "--workers", "0"],
        &["demo", "--pipelines", "many"],
        &[
            "recover",
            "--stale-after",
            "soon",
            "--database-url",
            "sqlite://x.db",
        ],
    ];
    for args in cases {
        let err = clean_failure(&te(args));
        assert!(err.contains(args[1]), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_database_url_is_named() {
    let err = clean_failure(&te(&["status"]));
    assert!(err.contains("--database-url"), "{err}");
}

#[test]
fn a_malformed_pipeline_id_is_a_usage_error() {
    let err = clean_failure(&te(&[
        "status",
        "pipeline-7",
        "--database-url",
        "sqlite://x.db",
    ]));
    assert!(err.contains("pipeline-7"), "{err}");
}

#[test]
fn an_unsupported_url_names_its_scheme_not_its_password() {
    let err = fails_on("migrate", "mysql://root:hunter2@db/x");
    assert!(err.contains("mysql://"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn an_unreachable_server_is_reported_in_one_line() {
    let err = fails_on("status", "postgres://postgres:secret@127.0.0.1:1/nothing");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn no_form_of_password_reaches_stderr() {
    // Each URL fails (unreachable port, or a form libpq parses differently)
    // and each secret is long enough to be recognised anywhere in stderr.
    let cases = [
        (
            "postgres://u:pass/word@127.0.0.1:1/db",
            ["pass/word", "pass", "word"],
        ),
        (
            "postgres://u:s3cr%2Ft@127.0.0.1:1/db",
            ["s3cr%2Ft", "s3cr/t", "s3cr"],
        ),
        (
            "postgres://127.0.0.1:1/db?password=s3cr3t",
            ["s3cr3t", "s3cr3t", "s3cr3t"],
        ),
        (
            "postgres://127.0.0.1:1/db?password=s3cr3t&bogus=1",
            ["s3cr3t", "s3cr3t", "s3cr3t"],
        ),
        ("postgres://u:p@ss@127.0.0.1:1/db", ["p@ss", "p@ss", "p@ss"]),
    ];
    for (url, secrets) in cases {
        for command in ["status", "recover", "migrate"] {
            let err = fails_on(command, url);
            for secret in secrets {
                assert!(!err.contains(secret), "{url}: {err}");
            }
        }
    }
}

#[tokio::test]
async fn recover_with_a_threshold_beyond_any_instant_finds_nothing() {
    let db = TestDb::on(backend_from_env()).await;
    let out = succeeded(&te(&[
        "recover",
        "--database-url",
        db.url(),
        "--stale-after",
        "100000000h",
    ]));
    assert!(out.contains("no stale claims"), "{out}");
}

#[test]
fn a_missing_sqlite_file_says_to_migrate_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let url = format!("sqlite://{}", path.display());
    for command in ["status", "recover"] {
        let err = fails_on(command, &url);
        assert!(err.contains("te migrate"), "{err}");
    }
    assert!(!path.exists());
}

#[tokio::test]
async fn an_unmigrated_database_says_to_migrate() {
    let db = TestDb::unmigrated_on(backend_from_env()).await;
    let id = Uuid::new_v4().to_string();
    let cases: [&[&str]; 3] = [&["status"], &["status", &id], &["recover"]];
    for args in cases {
        let args = [args, &["--database-url", db.url()]].concat();
        let err = clean_failure(&te(&args));
        assert!(err.contains("te migrate"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn an_unknown_pipeline_is_named() {
    let db = TestDb::new().await;
    let id = Uuid::new_v4();
    let err = clean_failure(&te(&[
        "status",
        &id.to_string(),
        "--database-url",
        db.url(),
    ]));
    assert!(err.contains(&id.to_string()), "{err}");
    assert!(err.contains("no pipeline"), "{err}");
}

#[tokio::test]
async fn migrate_applies_once_then_reports_up_to_date() {
    let db = TestDb::unmigrated_on(backend_from_env()).await;
    let first = succeeded(&te(&["migrate", "--database-url", db.url()]));
    assert!(first.starts_with("applied"), "{first}");
    // The URL can come from the environment too.
    let again = Command::new(env!("CARGO_BIN_EXE_te"))
        .arg("migrate")
        .env("DATABASE_URL", db.url())
        .output()
        .expect("te runs");
    assert!(succeeded(&again).contains("up to date"));
    let status = succeeded(&te(&["status", "--database-url", db.url()]));
    assert!(status.contains("0 tasks, all finished"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_resets_stale_claims_and_abandons_repeat_offenders() {
    let db = TestDb::new().await;
    let pid = db.insert_new_pipeline("recover-test").await;
    let again = db
        .create(NewTaskExecution::new(pid, "recovered_before").max_attempts(3))
        .await
        .unwrap();
    let first = db
        .create(NewTaskExecution::new(pid, "first_time"))
        .await
        .unwrap();
    db.mark_ready(again.id).await.unwrap();
    db.mark_ready(first.id).await.unwrap();
    let runner = Uuid::new_v4();
    assert_eq!(
        db.claim_ready_tasks_for_runner(runner, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    // `recovered_before` was lost once already, then claimed again.
    db.reset_task_for_recovery(again.id).await.unwrap();
    assert_eq!(
        db.claim_ready_tasks_for_runner(runner, 2)
            .await
            .unwrap()
            .len(),
        1
    );

    // Fresh heartbeats are left alone.
    let quiet = succeeded(&te(&["recover", "--database-url", db.url()]));
    assert!(quiet.contains("no stale claims"), "{quiet}");
    assert_eq!(
        db.get_by_id(first.id).await.unwrap().status,
        TaskStatus::Running
    );

    let out = succeeded(&te(&[
        "recover",
        "--stale-after",
        "0s",
        "--max-recoveries",
        "1",
        "--database-url",
        db.url(),
    ]));
    let row = |id: Uuid| {
        out.lines()
            .find(|l| l.contains(&id.to_string()))
            .unwrap_or_else(|| panic!("no row for {id} in:\n{out}"))
            .to_owned()
    };
    assert!(row(first.id).starts_with("reset"), "{out}");
    assert!(row(again.id).starts_with("abandoned"), "{out}");
    assert!(out.contains("1 reset, 1 abandoned"), "{out}");

    let reset = db.get_by_id(first.id).await.unwrap();
    assert_eq!(reset.status, TaskStatus::Ready);
    assert_eq!(reset.recovery_attempts, 1);
    assert_eq!(reset.claimed_by, None);
    let abandoned = db.get_by_id(again.id).await.unwrap();
    assert_eq!(abandoned.status, TaskStatus::Failed);
    assert!(abandoned.is_abandoned(), "{abandoned:?}");

    let after = succeeded(&te(&[
        "recover",
        "--stale-after",
        "0s",
        "--database-url",
        db.url(),
    ]));
    assert!(after.contains("no stale claims"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrating_at_once_both_succeed_and_apply_once() {
    // How many migrations there are: what the library applies to a fresh database.
    let all = TestDb::unmigrated_on(backend_from_env())
        .await
        .migrate()
        .await
        .unwrap();
    // A few fresh databases, so that the two processes' runs overlap at least
    // once; each round must hold regardless of how they interleave.
    for _ in 0..3 {
        let db = TestDb::unmigrated_on(backend_from_env()).await;
        let spawn = || {
            command(&["migrate", "--database-url", db.url()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("te runs")
        };
        let (a, b) = (spawn(), spawn());
        let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let said: Vec<String> = outputs.iter().map(succeeded).collect();
        let applied = said
            .iter()
            .filter(|s| s.starts_with(&format!("applied {all} migrations")))
            .count();
        let current = said.iter().filter(|s| s.contains("is up to date")).count();
        assert_eq!((applied, current), (1, 1), "{said:?}");
        // The schema is complete and usable.
        let pipeline = db
            .create_pipeline_execution(NewPipelineExecution::new("after-race"))
            .await
            .unwrap();
        assert_eq!(
            db.get_pipeline_execution(pipeline.id).await.unwrap(),
            pipeline
        );
    }
}
