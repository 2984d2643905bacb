//! Throughput benchmark: P pipelines × T tasks created, then W workers claim
//! in batches of B and complete until drained; prints one JSON object per run.
//!
//! ```text
//! cargo bench --bench throughput -- [--backend sqlite|postgres] [--pipelines P]
//!     [--tasks T] [--workers W] [--batch B] [--stats-tasks N]
//! ```
//!
//! PostgreSQL runs use a fresh database on the server te-testkit finds
//! (`DATABASE_URL`, a local cluster, or a container). `cargo xtask bench`
//! repeats runs and reports medians.

// The JSON result goes to stdout.
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use task_execution_dal::prelude::*;
use te_testkit::TestDb;
use uuid::Uuid;

struct Params {
    backend: Backend,
    pipelines: usize,
    tasks: usize,
    workers: usize,
    batch: usize,
    stats_tasks: usize,
}

fn parse_args() -> Params {
    let mut params = Params {
        backend: Backend::Sqlite,
        pipelines: 50,
        tasks: 200,
        workers: 8,
        batch: 32,
        stats_tasks: 20_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).map(String::as_str).unwrap_or_default();
        let number = |name: &str| -> usize {
            value()
                .parse()
                .unwrap_or_else(|_| panic!("{name} needs a number"))
        };
        match args[i].as_str() {
            "--backend" => {
                params.backend = match value() {
                    "postgres" => Backend::Postgres,
                    "sqlite" => Backend::Sqlite,
                    other => panic!("--backend {other:?}: expected sqlite or postgres"),
                }
            }
            "--pipelines" => params.pipelines = number("--pipelines"),
            "--tasks" => params.tasks = number("--tasks"),
            "--workers" => params.workers = number("--workers"),
            "--batch" => params.batch = number("--batch"),
            "--stats-tasks" => params.stats_tasks = number("--stats-tasks"),
            // `cargo bench` passes --bench to the harness.
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    params
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    percentile(&samples, 50.0)
}

async fn create_workload(dal: &TaskExecutionDal, pipelines: usize, tasks: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(pipelines);
    for p in 0..pipelines {
        let pipeline = dal
            .create_pipeline_execution(NewPipelineExecution::new(format!("bench-{p}")))
            .await
            .expect("create pipeline");
        let batch = (0..tasks)
            .map(|t| {
                NewTaskExecution::new(pipeline.id, format!("task-{t}")).status(TaskStatus::Ready)
            })
            .collect();
        dal.create_many(batch).await.expect("create tasks");
        ids.push(pipeline.id);
    }
    ids
}

async fn drain(dal: &TaskExecutionDal, workers: usize, batch: usize) -> (Vec<Uuid>, Vec<Duration>) {
    let mut handles = Vec::new();
    for _ in 0..workers {
        let dal = dal.clone();
        handles.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            let mut latencies = Vec::new();
            loop {
                let start = Instant::now();
                let batch = dal.claim_ready_task(batch).await.expect("claim");
                latencies.push(start.elapsed());
                if batch.is_empty() {
                    break;
                }
                let ids: Vec<Uuid> = batch.iter().map(|c| c.id).collect();
                dal.mark_completed_many(ids.clone(), None)
                    .await
                    .expect("complete");
                claimed.extend(ids);
            }
            (claimed, latencies)
        }));
    }
    let mut claimed = Vec::new();
    let mut latencies = Vec::new();
    for handle in handles {
        let (c, l) = handle.await.expect("worker");
        claimed.extend(c);
        latencies.extend(l);
    }
    (claimed, latencies)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let params = parse_args();
    let db = TestDb::on(params.backend).await;
    let dal = TaskExecutionDal::connect_with(
        DalConfig::new(db.url()).max_connections(params.workers.max(2)),
    )
    .await
    .expect("connect");

    let total = params.pipelines * params.tasks;
    let start = Instant::now();
    create_workload(&dal, params.pipelines, params.tasks).await;
    let created_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let (claimed, mut latencies) = drain(&dal, params.workers, params.batch).await;
    let drained_secs = start.elapsed().as_secs_f64();
    let unique: HashSet<Uuid> = claimed.iter().copied().collect();
    let duplicates = claimed.len() - unique.len();
    assert_eq!(unique.len(), total, "every task is claimed");
    latencies.sort();

    // Statistics queries on one large pipeline.
    let big = create_workload(&dal, 1, params.stats_tasks).await[0];
    let names: Vec<String> = (0..params.stats_tasks)
        .map(|t| format!("task-{t}"))
        .collect();
    let mut retry_stats = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        dal.get_retry_stats(big).await.expect("retry stats");
        retry_stats.push(start.elapsed());
        let start = Instant::now();
        let map = dal
            .get_task_statuses_batch(big, names.clone())
            .await
            .expect("statuses");
        statuses.push(start.elapsed());
        assert_eq!(map.len(), params.stats_tasks);
    }

    println!(
        "{{\"backend\":\"{}\",\"pipelines\":{},\"tasks_per_pipeline\":{},\"workers\":{},\"batch\":{},\
\"tasks_created_per_sec\":{:.1},\"tasks_drained_per_sec\":{:.1},\"claim_p50_ms\":{:.3},\"claim_p99_ms\":{:.3},\
\"duplicate_claims\":{},\"retry_stats_ms\":{:.3},\"task_statuses_batch_ms\":{:.3},\"stats_pipeline_tasks\":{}}}",
        params.backend,
        params.pipelines,
        params.tasks,
        params.workers,
        params.batch,
        total as f64 / created_secs,
        total as f64 / drained_secs,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        duplicates,
        median_ms(retry_stats),
        median_ms(statuses),
        params.stats_tasks,
    );
}
