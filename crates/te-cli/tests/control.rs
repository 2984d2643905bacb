//! `te cancel`, `te pause`, `te resume`, `te pipelines` and `te prune` run as
//! processes against a database the test prepares, on the backend
//! `TE_TEST_BACKEND` selects.

use std::process::Output;

mod common;
use common::{succeeded, te};

use task_execution_dal::prelude::*;
use te_testkit::TestDb;
use uuid::Uuid;

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "te succeeded unexpectedly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn pipeline_with_tasks(db: &TestDb, name: &str) -> Uuid {
    let p = db
        .create_pipeline_execution(NewPipelineExecution::new(name))
        .await
        .unwrap()
        .id;
    db.create_many(vec![
        NewTaskExecution::new(p, "a").status(TaskStatus::Ready),
        NewTaskExecution::new(p, "b"),
    ])
    .await
    .unwrap();
    p
}

#[tokio::test]
async fn cancel_pause_resume_and_list_from_the_command_line() {
    let db = TestDb::new().await;
    let url = db.url().to_owned();
    let first = pipeline_with_tasks(&db, "first").await;
    let second = pipeline_with_tasks(&db, "second").await;

    let out = succeeded(&te(&["pause", &second.to_string(), "--database-url", &url]));
    assert_eq!(out, format!("paused pipeline {second}\n"));
    assert!(db.get_pipeline_execution(second).await.unwrap().paused);
    let out = succeeded(&te(&[
        "resume",
        &second.to_string(),
        "--database-url",
        &url,
    ]));
    assert_eq!(out, format!("resumed pipeline {second}\n"));

    let out = succeeded(&te(&[
        "cancel",
        &first.to_string(),
        "--reason",
        "not needed",
        "--database-url",
        &url,
    ]));
    assert!(out.contains("2 tasks skipped, 0 still running"), "{out}");
    let tasks = db.get_all_tasks_for_pipeline(first).await.unwrap();
    assert!(
        tasks
            .iter()
            .all(|t| t.error_details.as_deref() == Some("not needed"))
    );

    let table = succeeded(&te(&["pipelines", "--database-url", &url]));
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(
        rows[0].starts_with(&second.to_string()),
        "newest first:\n{table}"
    );
    assert!(rows[1].starts_with(&first.to_string()), "{table}");
    assert!(rows[1].contains("Cancelled"), "{table}");
    assert!(table.contains("2 pipeline executions shown"), "{table}");
    let only = succeeded(&te(&[
        "pipelines",
        "--status",
        "cancelled",
        "--limit",
        "5",
        "--database-url",
        &url,
    ]));
    assert!(only.contains(&first.to_string()) && !only.contains(&second.to_string()));

    // A finished pipeline cannot be cancelled; an unknown one is named.
    let err = failed(&te(&["pause", &first.to_string(), "--database-url", &url]));
    assert!(err.contains("Cancelled"), "{err}");
    let unknown = Uuid::new_v4();
    let err = failed(&te(&[
        "cancel",
        &unknown.to_string(),
        "--database-url",
        &url,
    ]));
    assert!(err.contains(&unknown.to_string()), "{err}");
}

#[tokio::test]
async fn prune_deletes_old_finished_pipelines_and_dry_run_deletes_nothing() {
    let db = TestDb::new().await;
    let url = db.url().to_owned();
    let done = pipeline_with_tasks(&db, "done").await;
    db.cancel_pipeline(done, "stop").await.unwrap();
    let live = pipeline_with_tasks(&db, "live").await;

    // Nothing finished a day ago.
    let out = succeeded(&te(&[
        "prune",
        "--older-than",
        "1d",
        "--database-url",
        &url,
    ]));
    assert!(out.starts_with("pruned 0 pipeline executions"), "{out}");
    // Everything finished before now, with a dry run first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = succeeded(&te(&[
        "prune",
        "--older-than",
        "1s",
        "--dry-run",
        "--database-url",
        &url,
    ]));
    assert!(
        out.starts_with("would prune 1 pipeline executions"),
        "{out}"
    );
    assert!(out.contains("(2 tasks)"), "{out}");
    db.get_pipeline_execution(done).await.unwrap();
    let out = succeeded(&te(&[
        "prune",
        "--older-than",
        "1s",
        "--database-url",
        &url,
    ]));
    assert!(out.starts_with("pruned 1 pipeline executions"), "{out}");
    assert!(out.contains("2 tasks"), "{out}");
    assert!(
        db.get_pipeline_execution(done)
            .await
            .unwrap_err()
            .is_not_found()
    );
    db.get_pipeline_execution(live).await.unwrap();
}

#[tokio::test]
async fn a_refused_pause_or_resume_says_what_was_refused() {
    let db = TestDb::new().await;
    let url = db.url().to_owned();
    let p = pipeline_with_tasks(&db, "done").await;
    db.update_pipeline_status(p, PipelineStatus::Completed, None)
        .await
        .unwrap();
    let err = failed(&te(&["pause", &p.to_string(), "--database-url", &url]));
    assert!(
        err.contains(&format!(
            "cannot pause pipeline execution {p}: it is Completed"
        )),
        "{err}"
    );
    assert!(!err.contains("Completed -> Completed"), "{err}");
    let err = failed(&te(&["cancel", &p.to_string(), "--database-url", &url]));
    assert!(
        err.contains(&format!(
            "cannot cancel pipeline execution {p}: it is Completed"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_dry_run_of_prune_is_refused_as_the_real_run_is() {
    let db = TestDb::new().await;
    let url = db.url().to_owned();
    let real = failed(&te(&[
        "prune",
        "--older-than",
        "7000years",
        "--database-url",
        &url,
    ]));
    let dry = failed(&te(&[
        "prune",
        "--older-than",
        "7000years",
        "--dry-run",
        "--database-url",
        &url,
    ]));
    for err in [&real, &dry] {
        assert!(
            err.contains("invalid input for `finished_before`: must not be before"),
            "{err}"
        );
    }
}

/// A control command given an empty file that was never migrated says so
/// and leaves the file as it was: 0 bytes, no `-wal` or `-shm` beside it.
#[test]
fn control_commands_on_an_empty_unmigrated_sqlite_file_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let url = format!("sqlite://{}", path.display());
    let id = Uuid::new_v4().to_string();
    let cases: [&[&str]; 6] = [
        &["pause", &id],
        &["resume", &id],
        &["cancel", &id],
        &["pipelines"],
        &["prune", "--older-than", "1d"],
        &["prune", "--older-than", "1d", "--dry-run"],
    ];
    for args in cases {
        let args = [args, &["--database-url", &url]].concat();
        let err = failed(&te(&args));
        assert!(err.contains("te migrate"), "{args:?}: {err}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "{args:?} wrote the file"
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["empty.db"], "{args:?} left files beside it");
    }
}
