//! Stale claims: runner claims on unfinished tasks whose heartbeat stopped.
//! A plain function on one connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::task_executions::dsl as t;
use te_core::toolkit::{bind, now, validate};
use te_core::{AnyConnection, DalError, StaleClaim};
use uuid::Uuid;

use crate::runner::CLAIMABLE;

/// Stale claims older than `threshold`; see `TaskClaiming::find_stale_claims`.
pub(crate) fn find_stale_claims(
    conn: &mut AnyConnection,
    threshold: Duration,
) -> Result<Vec<StaleClaim>, DalError> {
    // A threshold reaching before the earliest instant either backend stores
    // (or beyond what chrono represents) finds nothing: no heartbeat is older.
    let Some(threshold) = chrono::Duration::from_std(threshold).ok() else {
        return Ok(Vec::new());
    };
    let Some(cutoff) = now()
        .checked_sub_signed(threshold)
        .filter(|cutoff| *cutoff >= validate::earliest_instant())
    else {
        return Ok(Vec::new());
    };
    let rows = t::task_executions
        .filter(t::claimed_by.is_not_null())
        .filter(t::status.eq_any(CLAIMABLE.to_vec()))
        .filter(t::heartbeat_at.lt(bind::opt_ts(Some(cutoff))))
        .order((t::heartbeat_at.asc(), t::id.asc()))
        .select((t::id, t::claimed_by, t::heartbeat_at, t::recovery_attempts))
        .load::<(Uuid, Option<Uuid>, Option<DateTime<Utc>>, i32)>(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(task_id, claimed_by, heartbeat_at, recovery_attempts)| {
            // Both are non-NULL by the filters above.
            Some(StaleClaim {
                task_id,
                claimed_by: claimed_by?,
                heartbeat_at: heartbeat_at?,
                recovery_attempts,
            })
        })
        .collect())
}
