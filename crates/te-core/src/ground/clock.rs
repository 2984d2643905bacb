//! The current instant and new ids, as every row of the DAL stamps them.

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// Now, truncated to the microsecond: what both backends store, so a value
/// written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new time-ordered (version 7) UUID: rows created later sort later.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
