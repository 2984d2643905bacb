//! A poison-tolerant lock for the demo's shared state: a task that panicked
//! while holding a lock has already failed the run, so the state it left is
//! still read (and reported) rather than turned into a second panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a thread panicked while holding it: the demo's
/// counters and records stay readable, so a panic elsewhere never hides the
/// demo's results.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
