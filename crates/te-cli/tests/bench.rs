//! `te bench --json` run as a process with tiny sizes, on the backend
//! `TE_TEST_BACKEND` selects: one JSON object per workload with every
//! figure, no duplicate claims, and no scratch database left behind.

use std::process::Command;

use serde_json::Value;
use task_execution_dal::prelude::*;
use te_testkit::{TestDb, backend_from_env};

/// The figures each workload must report.
const FIGURES: &[(&str, &[&str])] = &[
    (
        "create",
        &["create_one_tasks_per_sec", "create_batched_tasks_per_sec"],
    ),
    (
        "drain",
        &[
            "drain_per_task_tasks_per_sec",
            "claim_p50_ms",
            "claim_p99_ms",
            "complete_p50_ms",
            "complete_p99_ms",
            "drain_batched_tasks_per_sec",
            "claim_batch_p50_ms",
            "claim_batch_p99_ms",
            "complete_many_p50_ms",
            "complete_many_p99_ms",
            "duplicates",
        ],
    ),
    ("stats", &["retry_stats_ms", "task_statuses_batch_ms"]),
    (
        "history",
        &[
            "drain_empty_tasks_per_sec",
            "drain_history_tasks_per_sec",
            "claim_p50_empty_ms",
            "claim_p99_empty_ms",
            "claim_p50_history_ms",
            "claim_p99_history_ms",
            "claim_p50_ratio",
            "duplicates",
        ],
    ),
    (
        "engine",
        &[
            "engine_tasks_per_sec",
            "engine_claim_p50_ms",
            "engine_claim_p99_ms",
            "duplicates",
        ],
    ),
    (
        "prune",
        &[
            "claim_p50_alone_ms",
            "claim_p99_alone_ms",
            "claim_p50_during_prune_ms",
            "claim_p99_during_prune_ms",
            "drain_during_prune_tasks_per_sec",
            "pruned_tasks",
            "prune_secs",
            "duplicates",
        ],
    ),
    (
        "wakeup",
        &[
            "wakeup_tasks",
            "wakeup_p50_ms",
            "wakeup_p99_ms",
            "duplicates",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn bench_json_has_every_figure_and_no_duplicates() {
    let backend = backend_from_env();
    // On PostgreSQL, `te bench` creates (and drops) its databases on the
    // server of a test database; on SQLite it uses the temporary directory.
    let db = TestDb::unmigrated_on(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Postgres => db.url().to_owned(),
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("given.db").display()),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_te"))
        .args([
            "bench",
            "--json",
            "--runs",
            "2",
            "--pipelines",
            "3",
            "--tasks",
            "7",
            "--workers",
            "3",
            "--batch",
            "4",
            "--claim-batch",
            "5",
            "--stats-tasks",
            "30",
            "--history-rows",
            "50",
            "--history-tasks",
            "9",
            "--engine-pipelines",
            "3",
            "--wakeup-tasks",
            "6",
            "--database-url",
            &url,
        ])
        .env_remove("DATABASE_URL")
        .output()
        .expect("te runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "te bench failed: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2 * FIGURES.len(), "{lines:?}");
    for (i, line) in lines.iter().enumerate() {
        let (workload, figures) = FIGURES[i % FIGURES.len()];
        assert_eq!(line["workload"], workload, "{line}");
        assert_eq!(line["run"], (i / FIGURES.len() + 1) as u64, "{line}");
        assert_eq!(line["backend"], backend.to_string(), "{line}");
        for figure in figures {
            let value = line[figure]
                .as_f64()
                .unwrap_or_else(|| panic!("{workload} lacks {figure}: {line}"));
            assert!(value >= 0.0, "{workload} {figure} = {value}");
        }
        if let Some(duplicates) = line.get("duplicates") {
            assert_eq!(duplicates, 0, "{line}");
        }
    }
    // Every scratch database is gone: SQLite files beside the given URL.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
