//! `cargo xtask bench`: builds `te` in release, runs `te bench --json` on
//! SQLite and PostgreSQL (runs alternating between backends), prints the
//! median of each figure per backend with pgbench's figure on the same
//! PostgreSQL server beside them, and with `--chart PATH` writes an SVG chart
//! of drain throughput by workers and claim batch size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use te_testkit::ScratchDb;

use crate::{Backends, cargo, postgres, workspace_root};

/// Workers of the chart's sweep.
const SWEEP_WORKERS: &[u64] = &[1, 2, 4, 8, 16];
/// Claim batch sizes of the chart's sweep (1, the per-task drain, is in every run).
const SWEEP_BATCHES: &[u64] = &[8, 32, 128];

/// Keys of `te bench --json` that give a workload's sizes and set-up, not a measurement.
const PARAMS: &[&str] = &[
    "run",
    "pipelines",
    "tasks_per_pipeline",
    "workers",
    "batch",
    "claim_batch",
    "stats_tasks",
    "history_rows",
    "history_tasks",
    "engine_pipelines",
    "work_ms",
    "analyzed",
];

/// `(backend, workload, figure)` → one value per run.
type Samples = BTreeMap<(String, String, String), Vec<f64>>;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut runs = 3usize;
    let mut backends = Backends::All;
    let mut chart: Option<PathBuf> = None;
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
            "--chart" => chart = Some(iter.next().ok_or("--chart needs a path")?.into()),
            "--" => extra.extend(iter.by_ref().cloned()),
            other => return Err(format!("unknown flag `{other}` for `bench`")),
        }
    }
    let te = build_te()?;
    let mut targets: Vec<(&str, Option<String>)> = Vec::new();
    if backends.sqlite() {
        targets.push(("sqlite", None));
    }
    if backends.postgres() {
        match postgres_url() {
            Ok(url) => targets.push(("postgres", Some(url))),
            Err(why) => eprintln!("xtask: skipping PostgreSQL: {why}"),
        }
    }

    let mut samples = Samples::new();
    for run in 1..=runs {
        for (backend, url) in &targets {
            eprintln!("xtask: te bench on {backend}, run {run}/{runs}");
            for line in te_bench(&te, url.as_deref(), &extra)? {
                println!("{line}");
                record(&mut samples, &line)?;
            }
        }
    }
    let pgbench = targets
        .iter()
        .find_map(|(_, url)| url.as_deref())
        .map(pgbench_tps);
    print_medians(&samples, runs, &targets, pgbench.as_ref());

    if let Some(path) = chart {
        let mut series = Vec::new();
        for (backend, url) in &targets {
            series.push((backend.to_string(), sweep(&te, backend, url.as_deref())?));
        }
        std::fs::write(&path, svg(&series)).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
    }
    Ok(())
}

/// Builds `te` in release and returns its path.
fn build_te() -> Result<PathBuf, String> {
    eprintln!("xtask: cargo build --release -p te-cli --bin te");
    let status = cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "te-cli",
            "--bin",
            "te",
        ])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let te = target.join("release").join("te");
    te.is_file()
        .then_some(te.clone())
        .ok_or_else(|| format!("{} was not built", te.display()))
}

/// The PostgreSQL server to measure on: `DATABASE_URL`, else the local
/// server on 127.0.0.1:5432.
fn postgres_url() -> Result<String, String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            postgres::availability().map(|_| url)
        }
        _ => {
            postgres::reachable("127.0.0.1", 5432).map_err(|e| {
                format!("DATABASE_URL is not set and 127.0.0.1:5432 is unreachable: {e}")
            })?;
            Ok("postgres://postgres@127.0.0.1:5432/postgres".into())
        }
    }
}

/// Runs `te bench --json` once; returns its JSON lines.
fn te_bench(te: &Path, url: Option<&str>, args: &[String]) -> Result<Vec<String>, String> {
    let mut command = Command::new(te);
    command
        .args(["bench", "--json"])
        .args(args)
        .env_remove("DATABASE_URL")
        .stderr(Stdio::inherit());
    if let Some(url) = url {
        command.args(["--database-url", url]);
    }
    let output = command.output().map_err(|e| format!("te bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("te bench failed ({})", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(str::to_owned)
        .collect())
}

/// The `"key":value` pairs of a flat JSON object (no nesting, no commas in
/// strings, as `te bench --json` prints); string values without quotes.
fn pairs(json: &str) -> Vec<(String, String)> {
    json.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once(':')?;
            Some((
                key.trim().trim_matches('"').to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// Records every measured figure of one JSON line (sizes are left out).
fn record(samples: &mut Samples, line: &str) -> Result<(), String> {
    let pairs = pairs(line);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no {name} in {line}"))
    };
    let (backend, workload) = (get("backend")?, get("workload")?);
    for (key, value) in &pairs {
        if let Ok(value) = value.parse::<f64>()
            && !PARAMS.contains(&key.as_str())
        {
            samples
                .entry((backend.clone(), workload.clone(), key.clone()))
                .or_default()
                .push(value);
        }
    }
    Ok(())
}

/// The median of `values` (the lower middle one for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

fn print_medians(
    samples: &Samples,
    runs: usize,
    targets: &[(&str, Option<String>)],
    pgbench: Option<&Result<f64, String>>,
) {
    let mut rows: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for ((backend, workload, figure), values) in samples {
        rows.entry((workload.clone(), figure.clone()))
            .or_default()
            .insert(backend.clone(), median(values));
    }
    println!("\nmedians of {runs} runs:");
    print!("{:<10} {:<30}", "workload", "figure");
    for (backend, _) in targets {
        print!(" {backend:>12}");
    }
    println!();
    for ((workload, figure), by_backend) in &rows {
        print!("{workload:<10} {figure:<30}");
        for (backend, _) in targets {
            match by_backend.get(*backend) {
                Some(v) if v.fract() == 0.0 || v.abs() >= 100.0 => print!(" {v:>12.0}"),
                Some(v) => print!(" {v:>12.3}"),
                None => print!(" {:>12}", "-"),
            }
        }
        println!();
    }
    match pgbench {
        Some(Ok(tps)) => println!(
            "pgbench -N -c 8 -T 10 on the same PostgreSQL server: {tps:.0} TPS (single-row update transactions)"
        ),
        Some(Err(why)) => println!("pgbench not measured: {why}"),
        None => {}
    }
}

/// pgbench's `-N` (simple update) TPS with 8 clients for 10 s, on a scratch
/// database (te-testkit's) of the server `url` names, dropped afterwards.
fn pgbench_tps(url: &str) -> Result<f64, String> {
    let database = ScratchDb::postgres(url, "te_pgbench")
        .map_err(|e| format!("pgbench's scratch database: {e}"))?;
    let scratch = database.url().to_owned();
    let result = (|| {
        let init = Command::new("pgbench")
            .args(["-i", "-q", "-s", "1", scratch.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("pgbench: {e}"))?;
        if !init.success() {
            return Err("pgbench -i failed".to_owned());
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
                "10",
                scratch.as_str(),
            ])
            .output()
            .map_err(|e| format!("pgbench: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| {
                l.strip_prefix("tps = ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .ok_or_else(|| format!("no tps in pgbench output: {text}"))
    })();
    let dropped = database
        .remove()
        .map_err(|e| format!("pgbench's scratch database: {e}"));
    result.and_then(|tps| dropped.map(|()| tps))
}

/// One line of the chart: a claim batch size and its throughput by workers.
type Series = Vec<(u64, Vec<(u64, f64)>)>;

/// Drains at each worker count and claim batch size of the sweep; returns
/// tasks/s by workers for batch 1 (the per-task drain) and each batch size.
fn sweep(te: &Path, backend: &str, url: Option<&str>) -> Result<Series, String> {
    let mut by_batch: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
    for &workers in SWEEP_WORKERS {
        let mut per_task = Vec::new();
        for &batch in SWEEP_BATCHES {
            eprintln!("xtask: chart sweep on {backend}: {workers} workers, batch {batch}");
            let args: Vec<String> = [
                "drain",
                "--pipelines",
                "10",
                "--tasks",
                "200",
                "--workers",
                &workers.to_string(),
                "--claim-batch",
                &batch.to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            for line in te_bench(te, url, &args)? {
                let pairs = pairs(&line);
                let get = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.parse::<f64>().ok())
                        .ok_or_else(|| format!("no {name} in {line}"))
                };
                per_task.push(get("drain_per_task_tasks_per_sec")?);
                by_batch
                    .entry(batch)
                    .or_default()
                    .push((workers, get("drain_batched_tasks_per_sec")?));
            }
        }
        by_batch
            .entry(1)
            .or_default()
            .push((workers, median(&per_task)));
    }
    Ok(by_batch.into_iter().collect())
}

/// A hand-written SVG: one panel per backend, tasks/s (y) by workers (x),
/// one line per claim batch size.
fn svg(panels: &[(String, Series)]) -> String {
    const W: f64 = 460.0;
    const H: f64 = 340.0;
    const COLORS: &[&str] = &["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"];
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 50.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        W * panels.len() as f64,
        H + 30.0
    );
    for (p, (backend, series)) in panels.iter().enumerate() {
        let x0 = p as f64 * W;
        let max = series
            .iter()
            .flat_map(|(_, points)| points.iter().map(|(_, v)| *v))
            .fold(1.0, f64::max);
        let step = nice_step(max / 5.0);
        let top_value = (max / step).ceil() * step;
        let plot_w = W - left - right;
        let plot_h = H - top - bottom;
        let x_of = |i: usize| x0 + left + plot_w * (i as f64 + 0.5) / SWEEP_WORKERS.len() as f64;
        let y_of = |v: f64| top + plot_h * (1.0 - v / top_value);
        out += &format!(
            "<text x=\"{:.1}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">drain throughput, {backend} (tasks/s)</text>\n",
            x0 + left
        );
        let mut v = 0.0;
        while v <= top_value + step / 2.0 {
            let y = y_of(v);
            out += &format!(
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n",
                x0 + left,
                x0 + W - right,
                x0 + left - 6.0,
                y + 4.0
            );
            v += step;
        }
        for (i, workers) in SWEEP_WORKERS.iter().enumerate() {
            out += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{workers}</text>\n",
                x_of(i),
                top + plot_h + 18.0
            );
        }
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">workers</text>\n",
            x0 + left + plot_w / 2.0,
            top + plot_h + 36.0
        );
        for (s, (batch, points)) in series.iter().enumerate() {
            let color = COLORS[s % COLORS.len()];
            let coords: Vec<String> = points
                .iter()
                .filter_map(|(w, v)| {
                    let i = SWEEP_WORKERS.iter().position(|x| x == w)?;
                    Some(format!("{:.1},{:.1}", x_of(i), y_of(*v)))
                })
                .collect();
            out += &format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
                coords.join(" ")
            );
            for c in &coords {
                let (x, y) = c.split_once(',').unwrap_or(("0", "0"));
                out += &format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"/>\n");
            }
            let label = if *batch == 1 {
                "per task (claim 1)".to_owned()
            } else {
                format!("claim {batch}")
            };
            let ly = top + 14.0 + 16.0 * s as f64;
            out += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{ly:.1}\">{label}</text>\n",
                x0 + left + 8.0,
                ly - 9.0,
                x0 + left + 22.0
            );
        }
    }
    out += &format!(
        "<text x=\"10\" y=\"{:.1}\" fill=\"#555\">te bench drain --pipelines 10 --tasks 200 --workers W --claim-batch B (release build); generated by cargo xtask bench --chart</text>\n</svg>\n",
        H + 18.0
    );
    out
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_json_lines() {
        let mut samples = Samples::new();
        let line =
            r#"{"backend":"sqlite","claim_p50_ms":1.25,"duplicates":0,"run":1,"workload":"drain"}"#;
        record(&mut samples, line).unwrap();
        let key = |f: &str| ("sqlite".to_owned(), "drain".to_owned(), f.to_owned());
        assert_eq!(samples[&key("claim_p50_ms")], vec![1.25]);
        assert_eq!(samples[&key("duplicates")], vec![0.0]);
        assert!(!samples.contains_key(&key("run")));
        record(
            &mut samples,
            r#"{"backend":"sqlite","workers":8,"workload":"drain"}"#,
        )
        .unwrap();
        assert!(!samples.contains_key(&key("workers")));
        assert!(record(&mut samples, r#"{"claim_p50_ms":1}"#).is_err());
    }

    #[test]
    fn medians_and_steps() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(nice_step(0.3), 1.0);
        assert_eq!(nice_step(130.0), 200.0);
        assert_eq!(nice_step(4_100.0), 5_000.0);
    }

    #[test]
    fn chart_has_a_panel_per_backend() {
        let series: Series = vec![(1, vec![(1, 100.0), (2, 180.0)]), (32, vec![(1, 900.0)])];
        let svg = svg(&[
            ("sqlite".into(), series.clone()),
            ("postgres".into(), series),
        ]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("drain throughput, postgres"));
    }
}
