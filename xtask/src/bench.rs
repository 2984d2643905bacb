//! `cargo xtask bench`: runs the throughput benchmark several times per
//! backend and reports the median of each figure, with pgbench's ceiling on
//! the same PostgreSQL server beside it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::{Backends, cargo, postgres};

const FIGURES: &[&str] = &[
    "tasks_created_per_sec",
    "tasks_drained_per_sec",
    "claim_p50_ms",
    "claim_p99_ms",
    "duplicate_claims",
    "retry_stats_ms",
    "task_statuses_batch_ms",
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut runs = 5usize;
    let mut backends = Backends::All;
    let mut extra: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--runs" => {
                runs = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--runs needs a positive number")?
            }
            "--backend" => {
                backends = Backends::parse(iter.next().ok_or("--backend needs a value")?)?
            }
            "--" => extra.extend(iter.by_ref().cloned()),
            other => return Err(format!("unknown flag `{other}` for `bench`")),
        }
    }
    let mut selected = Vec::new();
    if backends.sqlite() {
        selected.push("sqlite");
    }
    if backends.postgres() {
        match postgres::availability() {
            Ok(_) => selected.push("postgres"),
            Err(why) => eprintln!("xtask: skipping PostgreSQL: {why}"),
        }
    }
    for backend in selected {
        let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for run in 1..=runs {
            eprintln!("xtask: bench {backend} run {run}/{runs}");
            let json = bench_once(backend, &extra)?;
            println!("{json}");
            for figure in FIGURES {
                let value = field(&json, figure)
                    .ok_or_else(|| format!("benchmark output lacks {figure}: {json}"))?;
                samples.entry(figure).or_default().push(value);
            }
        }
        println!("\nmedians of {runs} runs on {backend} (min … max):");
        for figure in FIGURES {
            let mut values = samples.remove(figure).unwrap_or_default();
            values.sort_by(f64::total_cmp);
            let median = values[values.len() / 2];
            println!(
                "  {figure:<24} {median:>12.3}   ({:.3} … {:.3})",
                values[0],
                values[values.len() - 1]
            );
        }
        if backend == "postgres" {
            match pgbench_ceiling() {
                Ok(tps) => println!(
                    "  {:<24} {tps:>12.1}   (pgbench -N, 8 clients, same server: a ceiling for single-row update transactions)",
                    "pgbench_tps"
                ),
                Err(why) => println!("  pgbench ceiling not measured: {why}"),
            }
        }
    }
    Ok(())
}

fn bench_once(backend: &str, extra: &[String]) -> Result<String, String> {
    let output = cargo()
        .args([
            "bench",
            "--quiet",
            "--bench",
            "throughput",
            "--",
            "--backend",
            backend,
        ])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("benchmark failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .map(str::to_owned)
        .ok_or_else(|| "the benchmark printed no JSON".into())
}

/// The number after `"name":` in a flat JSON object.
fn field(json: &str, name: &str) -> Option<f64> {
    let key = format!("\"{name}\":");
    let start = json.find(&key)? + key.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// pgbench's simple-update TPS on a scratch database of the server
/// `DATABASE_URL` names.
fn pgbench_ceiling() -> Result<f64, String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let base = url.split('?').next().unwrap_or(&url);
    let scratch = match base.rfind('/') {
        Some(i) if i > base.find("://").map(|j| j + 2).unwrap_or(0) => {
            format!("{}/te_pgbench", &base[..i])
        }
        _ => format!("{base}/te_pgbench"),
    };
    let psql = |sql: &str| {
        Command::new("psql")
            .args([url.as_str(), "-q", "-c", sql])
            .stdout(Stdio::null())
            .status()
    };
    psql("DROP DATABASE IF EXISTS te_pgbench").map_err(|e| format!("psql: {e}"))?;
    psql("CREATE DATABASE te_pgbench").map_err(|e| format!("psql: {e}"))?;
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", "1", scratch.as_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("pgbench: {e}"))?;
    if !init.success() {
        return Err("pgbench -i failed".into());
    }
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-N",
            "-c",
            "8",
            "-j",
            "2",
            "-T",
            "5",
            scratch.as_str(),
        ])
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let _ = psql("DROP DATABASE IF EXISTS te_pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| format!("no tps in pgbench output: {text}"))
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn reads_flat_json_fields() {
        let json = r#"{"backend":"sqlite","claim_p50_ms":1.250,"duplicate_claims":0}"#;
        assert_eq!(field(json, "claim_p50_ms"), Some(1.25));
        assert_eq!(field(json, "duplicate_claims"), Some(0.0));
        assert_eq!(field(json, "missing"), None);
    }
}
