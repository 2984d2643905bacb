//! Appending to the audit log in SQL text: the column list every
//! hand-written insert of events shares, and SQLite's prepared insert of one
//! event. (PostgreSQL's statements that change a row write its event in the
//! same statement: [`GuardedUpdate`](super::guarded_update::GuardedUpdate)
//! here, the claim and the first save of a context in their crates' `sql`
//! modules; each starts with this head.)

/// `INSERT INTO execution_events (…)` with the columns of [`NewEvent`], as a
/// string literal for `concat!`: the head of every hand-written insert of
/// audit events (the te-* crates use it through `toolkit::insert_events_head`;
/// not covered by semver).
#[doc(hidden)]
#[macro_export]
macro_rules! __insert_events_head {
    () => {
        "INSERT INTO execution_events \
         (id, pipeline_execution_id, task_execution_id, event_type, event_data, runner_id, created_at)"
    };
}

/// The insert of one audit event, as a statement of fixed text (SQLite),
/// which each connection prepares once: a multi-row `INSERT` would be parsed
/// again for every call, and a statement in SQLite costs no round trip.
pub(crate) const SQLITE_EVENT_SQL: &str = concat!(
    crate::__insert_events_head!(),
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
);
