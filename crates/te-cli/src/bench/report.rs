//! The figures of one workload run, their percentiles and medians, and how
//! they are printed: one JSON object per run, or a table of every run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use task_execution_dal::prelude::Backend;

use crate::base::table;

/// The figures one run of one workload measured, in the order they were added.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    values: Vec<(&'static str, f64)>,
}

impl Figures {
    /// Adds figure `name`.
    pub(crate) fn add(&mut self, name: &'static str, value: f64) -> &mut Self {
        self.values.push((name, value));
        self
    }

    /// Adds a throughput: `count` items over `elapsed`.
    pub(crate) fn rate(
        &mut self,
        name: &'static str,
        count: usize,
        elapsed: Duration,
    ) -> &mut Self {
        self.add(name, count as f64 / elapsed.as_secs_f64().max(1e-9))
    }

    /// Adds `{prefix}_p50_ms` and `{prefix}_p99_ms` of `samples`.
    pub(crate) fn latency(
        &mut self,
        p50: &'static str,
        p99: &'static str,
        samples: &mut [Duration],
    ) -> &mut Self {
        samples.sort_unstable();
        self.add(p50, percentile_ms(samples, 50.0));
        self.add(p99, percentile_ms(samples, 99.0))
    }

    /// Adds every figure of `other`.
    pub(crate) fn extend(&mut self, other: Figures) -> &mut Self {
        self.values.extend(other.values);
        self
    }

    /// The value of figure `name`, if measured.
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Every figure, in the order added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.values.iter().copied()
    }
}

/// The `p`th percentile (nearest rank) of sorted `samples`, in milliseconds; 0 when empty.
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// The median of `samples` in milliseconds.
pub(crate) fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    percentile_ms(&samples, 50.0)
}

/// The median of `values` (the lower middle one for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

/// One run of one workload, as printed with `--json`: what ran, with which
/// sizes, and every figure.
pub(crate) fn json_line(
    workload: &str,
    backend: Backend,
    run: u32,
    params: &[(&str, u64)],
    figures: &Figures,
) -> String {
    let mut object = Map::new();
    object.insert("workload".into(), json!(workload));
    object.insert("backend".into(), json!(backend.to_string()));
    object.insert("run".into(), json!(run));
    for (name, value) in params {
        object.insert((*name).into(), json!(value));
    }
    for (name, value) in figures.iter() {
        let value = if value.fract() == 0.0 && value.abs() < 1e15 {
            json!(value as i64)
        } else {
            json!((value * 1000.0).round() / 1000.0)
        };
        object.insert(name.into(), value);
    }
    Value::Object(object).to_string()
}

/// Every run's figures of every workload, for the table.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    rows: BTreeMap<(usize, &'static str), (String, Vec<f64>)>,
    order: Vec<String>,
    runs: u32,
}

impl Summary {
    /// Records run `run` of `workload`.
    pub(crate) fn record(&mut self, workload: &str, run: u32, figures: &Figures) {
        let index = match self.order.iter().position(|w| w == workload) {
            Some(i) => i,
            None => {
                self.order.push(workload.to_owned());
                self.order.len() - 1
            }
        };
        for (name, value) in figures.iter() {
            self.rows
                .entry((index, name))
                .or_insert_with(|| (workload.to_owned(), Vec::new()))
                .1
                .push(value);
        }
        self.runs = self.runs.max(run);
    }

    /// A table: one row per figure, one column per run, and the median.
    pub(crate) fn render(&self) -> String {
        let mut header = vec!["workload".to_owned(), "figure".to_owned()];
        header.extend((1..=self.runs).map(|r| format!(">run {r}")));
        header.push(">median".into());
        let refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut table = table::new(&refs);
        let mut keys: Vec<_> = self.rows.keys().collect();
        keys.sort_by_key(|(i, _)| *i);
        for key in keys {
            let (workload, values) = &self.rows[key];
            let mut cells = vec![workload.clone(), key.1.to_owned()];
            cells.extend(values.iter().map(|v| format_value(*v)));
            while cells.len() < 2 + self.runs as usize {
                cells.push(String::new());
            }
            cells.push(format_value(median(values)));
            table.add_row(cells);
        }
        table::render(&table)
    }
}

/// A figure as shown in the table.
fn format_value(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let ms = |n: u64| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile_ms(&samples, 50.0), 51.0);
        assert_eq!(percentile_ms(&samples, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median_ms(vec![ms(5), ms(1), ms(3)]), 3.0);
    }

    #[test]
    fn json_has_every_figure() {
        let mut figures = Figures::default();
        figures.add("duplicates", 0.0).add("claim_p50_ms", 1.23456);
        let line = json_line("drain", Backend::Sqlite, 2, &[("tasks", 10)], &figures);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["workload"], "drain");
        assert_eq!(value["run"], 2);
        assert_eq!(value["tasks"], 10);
        assert_eq!(value["duplicates"], 0);
        assert_eq!(value["claim_p50_ms"], 1.235);
    }
}
