//! The batch claim: `Ready` tasks moved to `Running` so that no task is ever
//! handed to two callers. The only SQL of the DAL that differs by backend.
//!
//! - **PostgreSQL**: one statement, [`POSTGRES_CLAIM_SQL`](crate::sql::statements::POSTGRES_CLAIM_SQL). Its candidates
//!   come from the function `te_claim_candidates` (migration
//!   `claim_without_statistics`), whose `SELECT … FOR UPDATE SKIP LOCKED`
//!   locks them, skipping rows another claimer has locked, so concurrent
//!   claimers take disjoint sets without waiting on each other. Its
//!   `status = 'Ready'` filter matches the partial index
//!   `task_executions_ready_idx (priority DESC, created_at, id)`, walked in
//!   claim order and stopped at the limit, which keeps the claim cheap however
//!   large the history grows; the function plans it with sorting disabled, so
//!   that it walks the index even on tables never analyzed.
//! - **SQLite**: one statement, [`SQLITE_CLAIM_SQL`](crate::sql::statements::SQLITE_CLAIM_SQL): `UPDATE … WHERE id IN
//!   (SELECT … INDEXED BY task_executions_ready_idx … ORDER BY … LIMIT …)
//!   RETURNING …`, inside a write transaction begun
//!   with `BEGIN IMMEDIATE`, which takes the database's write lock before
//!   anything is read: two connections or two processes on one file never
//!   select the same rows. (SQLite runs an uncorrelated `IN` subquery once.)
//!
//! Tasks of a paused or cancelled pipeline execution are left out through
//! `held_pipelines`, a small table kept by triggers on `pipeline_executions`
//! (reading pipeline rows themselves, under the share locks of every event's
//! foreign-key check, slowed concurrent claims): on PostgreSQL by a `NOT IN`
//! that the executor hashes once per claim, so that each candidate costs a
//! hash probe and the candidates' scan stays on one table (a `NOT EXISTS`
//! anti-join made every claim rescan `held_pipelines` per candidate, and
//! made a claim that met a row just claimed by another worker re-check the
//! join); on SQLite by a `NOT EXISTS` probe per candidate. Claims are ordered
//! by `priority DESC, created_at, id`, and the `TaskClaimed` events are
//! written with the claim:
//! in the same statement on PostgreSQL, in the same transaction on SQLite.
//!
//! Both claim texts are fixed and run as [`Statement`]s: each connection
//! prepares a claim once and reuses it, instead of parsing and planning it on
//! every call.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use te_core::sql_types::{DbUuid, UtcTimestamp};
use te_core::toolkit::event_data;
use te_core::toolkit::statement::Bound;
use te_core::toolkit::{NewEvent, Statement, new_id, record_events, statement};
use te_core::{AnyConnection, ClaimResult, DalError, EventType};
use uuid::Uuid;

use crate::sql::statements::{POSTGRES_CLAIM_ONE_SQL, POSTGRES_CLAIM_SQL, SQLITE_CLAIM_SQL};

/// One row the claim changed.
#[derive(Debug, QueryableByName)]
pub(crate) struct ClaimedRow {
    #[diesel(sql_type = DbUuid)]
    id: Uuid,
    #[diesel(sql_type = DbUuid)]
    pipeline_execution_id: Uuid,
    #[diesel(sql_type = Text)]
    task_name: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = UtcTimestamp)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    priority: i32,
}

impl ClaimedRow {
    /// The claim order: highest priority first, then oldest, then by id.
    fn claim_order(&self) -> (std::cmp::Reverse<i32>, DateTime<Utc>, Uuid) {
        (std::cmp::Reverse(self.priority), self.created_at, self.id)
    }

    /// The `TaskClaimed` event of this row, claimed by `runner` at `now`: what
    /// SQLite writes after its claim (PostgreSQL's claim statement writes
    /// the same event itself).
    fn event(&self, runner: Option<Uuid>, now: DateTime<Utc>) -> NewEvent {
        NewEvent::task(
            self.pipeline_execution_id,
            self.id,
            EventType::TaskClaimed,
            now,
        )
        .data(event_data::task_claimed(self.attempt))
        .runner(runner)
    }
}

/// Claims up to `limit` (checked by the caller) ready tasks, for `runner`
/// if given, with a `TaskClaimed` event each: one statement on PostgreSQL,
/// two under the write lock on SQLite. Run it with `write_statement`.
///
/// `now` is the claim's time: each claimed task's `started_at` (which tells
/// this claim from a later one of the same task).
pub(crate) fn claim_ready(
    conn: &mut AnyConnection,
    runner: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimResult>, DalError> {
    let rows = match conn {
        AnyConnection::Postgres(pg) => in_claim_order(
            claim_query(postgres_claim(limit), runner, limit, now)
                .bind::<Array<DbUuid>, _>(event_ids(limit))
                .load::<ClaimedRow>(pg)?,
        ),
        AnyConnection::Sqlite(lite) => {
            let rows = in_claim_order(
                claim_query(SQLITE_CLAIM_SQL, runner, limit, now).load::<ClaimedRow>(lite)?,
            );
            let events: Vec<NewEvent> = rows.iter().map(|row| row.event(runner, now)).collect();
            record_events(conn, &events)?;
            rows
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| ClaimResult {
            id: row.id,
            pipeline_execution_id: row.pipeline_execution_id,
            task_name: row.task_name,
            attempt: row.attempt,
        })
        .collect())
}

/// The PostgreSQL claim statement for `limit` tasks.
pub(crate) fn postgres_claim(limit: i64) -> &'static str {
    if limit == 1 {
        POSTGRES_CLAIM_ONE_SQL
    } else {
        POSTGRES_CLAIM_SQL
    }
}

/// The parameters both backends' claims take, in placeholder order.
type ClaimBinds = Bound<
    Bound<
        Bound<Bound<(), UtcTimestamp, DateTime<Utc>>, Nullable<DbUuid>, Option<Uuid>>,
        Nullable<UtcTimestamp>,
        Option<DateTime<Utc>>,
    >,
    BigInt,
    i64,
>;

/// The claim statement `sql` (either backend's) with the parameters both
/// take: `now`, the runner, its heartbeat (`now` when there is a runner)
/// and the limit. PostgreSQL's also takes the events' ids. A fixed text, so
/// each connection prepares it once and reuses it.
pub(crate) fn claim_query(
    sql: &'static str,
    runner: Option<Uuid>,
    limit: i64,
    now: DateTime<Utc>,
) -> Statement<ClaimBinds> {
    statement(sql)
        .bind::<UtcTimestamp, _>(now)
        .bind::<Nullable<DbUuid>, _>(runner)
        .bind::<Nullable<UtcTimestamp>, _>(runner.map(|_| now))
        .bind::<BigInt, _>(limit)
}

/// `rows` in claim order: `RETURNING` gives no order, and the tasks are
/// handed out (and their events written) in the order they were claimed.
fn in_claim_order(mut rows: Vec<ClaimedRow>) -> Vec<ClaimedRow> {
    rows.sort_by_key(ClaimedRow::claim_order);
    rows
}

/// Fresh ids for the events of a claim of at most `limit` tasks.
pub(crate) fn event_ids(limit: i64) -> Vec<Uuid> {
    (0..limit).map(|_| new_id()).collect()
}
