//! The demo's closing summary: results and invariant checks as aligned
//! plain-text tables.

use std::time::Duration;

use crate::base::table;

/// One invariant and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    /// What must hold.
    pub(crate) name: &'static str,
    /// Whether it held.
    pub(crate) ok: bool,
    /// The figures behind the verdict.
    pub(crate) detail: String,
}

impl Check {
    /// A check of `name` that held when `ok`.
    pub(crate) fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Self {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// Everything the demo prints at the end.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// One line describing the run.
    pub(crate) title: String,
    /// Results, as (what, value) rows.
    pub(crate) results: Vec<(String, String)>,
    /// The invariant checks.
    pub(crate) checks: Vec<Check>,
    /// Descriptions of what went wrong, if anything.
    pub(crate) problems: Vec<String>,
    /// Closing lines (hints).
    pub(crate) notes: Vec<String>,
}

impl Summary {
    /// Adds a result row.
    pub(crate) fn result(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.results.push((what.into(), value.into()));
    }

    /// True when every check held.
    pub(crate) fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The names of the checks that failed.
    pub(crate) fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }

    /// The summary as text.
    pub(crate) fn render(&self) -> String {
        let mut results = table::new(&["RESULT", "VALUE"]);
        for (what, value) in &self.results {
            results.add_row([what.as_str(), value.as_str()]);
        }
        let mut checks = table::new(&["INVARIANT", "CHECK", "DETAIL"]);
        for c in &self.checks {
            checks.add_row([
                c.name,
                if c.ok { "ok" } else { "FAILED" },
                c.detail.as_str(),
            ]);
        }
        let mut out = format!(
            "{}\n\n{}\n{}",
            self.title,
            table::render(&results),
            table::render(&checks)
        );
        let verdict = if self.passed() {
            "all invariants hold".to_owned()
        } else {
            format!("invariants FAILED: {}", self.failed().join("; "))
        };
        out.push_str(&format!("\n{verdict}\n"));
        for problem in &self.problems {
            out.push_str(&format!("  - {problem}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("{note}\n"));
        }
        out
    }
}

/// `count` per second over `elapsed`.
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(per_second(10, Duration::from_secs(4)), 2.5);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn verdict_follows_the_checks() {
        let mut s = Summary {
            title: "demo".into(),
            ..Summary::default()
        };
        s.result("tasks", "10");
        s.checks.push(Check::new("first", true, "fine"));
        assert!(s.passed());
        assert!(s.render().contains("all invariants hold"));
        s.checks.push(Check::new("second", false, "2 bad"));
        s.problems.push("task x ran twice".into());
        assert!(!s.passed());
        assert_eq!(s.failed(), vec!["second"]);
        let text = s.render();
        assert!(text.contains("invariants FAILED: second"), "{text}");
        assert!(text.contains("second     FAILED  2 bad"), "{text}");
        assert!(text.contains("task x ran twice"));
    }
}
