//! `Monitor`: what the demo observes while it runs, shared by every worker:
//! counters, claim latencies, and the in-memory bookkeeping that catches a
//! task claimed or run by two workers at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::base::sync::lock;

/// At most this many violation messages are kept (the counters keep counting).
const MAX_MESSAGES: usize = 20;

/// Event counters, updated by workers, the scheduler and the recovery loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Claim calls made.
    pub(crate) claim_calls: AtomicU64,
    /// Tasks handed out by claims.
    pub(crate) claimed: AtomicU64,
    /// Attempts started (a task's work begun).
    pub(crate) attempts: AtomicU64,
    /// Tasks completed.
    pub(crate) completed: AtomicU64,
    /// Attempts that failed.
    pub(crate) failed_attempts: AtomicU64,
    /// Tasks that failed on their last attempt.
    pub(crate) failed_for_good: AtomicU64,
    /// Retries scheduled.
    pub(crate) retries: AtomicU64,
    /// Stale claims reset by recovery.
    pub(crate) recoveries: AtomicU64,
    /// Tasks abandoned by recovery.
    pub(crate) abandoned: AtomicU64,
    /// Tasks skipped because a dependency failed.
    pub(crate) skipped: AtomicU64,
    /// Tasks made ready by the scheduler.
    pub(crate) promoted: AtomicU64,
    /// Workers that died mid-task.
    pub(crate) crashes: AtomicU64,
    /// Claims a live worker lost (recovery took the task from it).
    pub(crate) claims_lost: AtomicU64,
    /// Claims that handed out a task a live worker still held.
    pub(crate) duplicate_claims: AtomicU64,
    /// Tasks started while another worker was running them.
    pub(crate) overlapping_runs: AtomicU64,
    /// Merged input contexts checked.
    pub(crate) contexts_checked: AtomicU64,
    /// Merged input contexts missing a key a dependency wrote.
    pub(crate) context_violations: AtomicU64,
}

/// Reads a counter.
pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Default)]
struct Holders {
    /// Task → the live worker holding its claim (claimed, not yet finished).
    claimed: HashMap<Uuid, Uuid>,
    /// Task → the live worker running it.
    running: HashMap<Uuid, Uuid>,
}

/// Shared observations of one demo run.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    /// Event counters.
    pub(crate) counters: Counters,
    holders: Mutex<Holders>,
    latencies: Mutex<Vec<Duration>>,
    messages: Mutex<Vec<String>>,
}

impl Monitor {
    /// Records one claim call: how long it took and how many tasks it returned.
    pub(crate) fn claim_call(&self, latency: Duration, tasks: usize) {
        bump(&self.counters.claim_calls);
        self.counters
            .claimed
            .fetch_add(tasks as u64, Ordering::Relaxed);
        lock(&self.latencies).push(latency);
    }

    /// `runner` was handed `task` by a claim. A task still held by another
    /// live worker is a duplicate claim.
    pub(crate) fn claimed(&self, task: Uuid, runner: Uuid) {
        if let Some(other) = self.take(|h| &mut h.claimed, task, runner) {
            bump(&self.counters.duplicate_claims);
            self.violation(format!(
                "task {task} was claimed by runner {runner} while runner {other} held it"
            ));
        }
    }

    /// `runner` starts running `task`. A task another live worker is running
    /// is an overlapping run: the invariant "no task ran twice at once" fails.
    pub(crate) fn started(&self, task: Uuid, runner: Uuid) {
        bump(&self.counters.attempts);
        if let Some(other) = self.take(|h| &mut h.running, task, runner) {
            bump(&self.counters.overlapping_runs);
            self.violation(format!(
                "task {task} started on runner {runner} while runner {other} was running it"
            ));
        }
    }

    /// Makes `runner` the holder of `task` in the map `which` picks; returns
    /// the other live worker that held it before, if any.
    fn take(
        &self,
        which: impl FnOnce(&mut Holders) -> &mut HashMap<Uuid, Uuid>,
        task: Uuid,
        runner: Uuid,
    ) -> Option<Uuid> {
        let previous = which(&mut lock(&self.holders)).insert(task, runner);
        previous.filter(|other| *other != runner)
    }

    /// `runner` is done with `task` (finished it, or gave it up).
    pub(crate) fn finished(&self, task: Uuid, runner: Uuid) {
        let mut holders = lock(&self.holders);
        if holders.running.get(&task) == Some(&runner) {
            holders.running.remove(&task);
        }
        if holders.claimed.get(&task) == Some(&runner) {
            holders.claimed.remove(&task);
        }
    }

    /// `runner` died: it no longer holds or runs anything (its claims stay in
    /// the database until recovery finds them).
    pub(crate) fn forget_runner(&self, runner: Uuid) {
        let mut holders = lock(&self.holders);
        holders.claimed.retain(|_, r| *r != runner);
        holders.running.retain(|_, r| *r != runner);
    }

    /// Checks that `context` (the merged input of `task`) has every key in
    /// `expected`.
    pub(crate) fn check_context(&self, task: &str, context: &Value, expected: &BTreeSet<String>) {
        bump(&self.counters.contexts_checked);
        let missing: Vec<&str> = expected
            .iter()
            .filter(|key| context.get(key.as_str()).is_none())
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            bump(&self.counters.context_violations);
            self.violation(format!(
                "the input context of {task} lacks {}",
                missing.join(", ")
            ));
        }
    }

    /// Keeps a description of something that went wrong.
    pub(crate) fn violation(&self, message: String) {
        let mut messages = lock(&self.messages);
        if messages.len() < MAX_MESSAGES {
            messages.push(message);
        }
    }

    /// The violations described so far.
    pub(crate) fn messages(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }

    /// Every claim call's latency, sorted.
    pub(crate) fn sorted_latencies(&self) -> Vec<Duration> {
        let mut all = lock(&self.latencies).clone();
        all.sort_unstable();
        all
    }
}

/// The `q`-quantile (0 to 1) of sorted samples, by nearest rank; `None` when empty.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overlapping_runs_are_caught() {
        let m = Monitor::default();
        let (task, a, b) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        m.claimed(task, a);
        m.started(task, a);
        m.claimed(task, b);
        m.started(task, b);
        assert_eq!(get(&m.counters.duplicate_claims), 1);
        assert_eq!(get(&m.counters.overlapping_runs), 1);
        assert_eq!(m.messages().len(), 2);
    }

    #[test]
    fn sequential_runs_and_dead_runners_are_fine() {
        let m = Monitor::default();
        let (task, a, b, c) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        m.claimed(task, a);
        m.started(task, a);
        m.finished(task, a);
        m.claimed(task, b);
        m.started(task, b);
        m.forget_runner(b);
        m.claimed(task, c);
        m.started(task, c);
        assert_eq!(get(&m.counters.duplicate_claims), 0);
        assert_eq!(get(&m.counters.overlapping_runs), 0);
        assert_eq!(get(&m.counters.attempts), 3);
    }

    #[test]
    fn missing_context_keys_are_reported() {
        let m = Monitor::default();
        let expected = BTreeSet::from(["pipeline".to_owned(), "extract".to_owned()]);
        m.check_context("load", &json!({"pipeline": {}, "extract": {}}), &expected);
        assert_eq!(get(&m.counters.context_violations), 0);
        m.check_context("load", &json!({"pipeline": {}}), &expected);
        assert_eq!(get(&m.counters.context_violations), 1);
        assert!(m.messages()[0].contains("extract"));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&samples, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&samples, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(
            quantile(&samples[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(quantile(&[], 0.5), None);
    }
}
