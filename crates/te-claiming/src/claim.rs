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
//! Queues, delays and limits (migration `routing`): a claim of named queues
//! walks `task_executions_queue_ready_idx (queue, priority DESC, created_at,
//! id)`, one queue at a time; `run_after` gates a task as `retry_at` does;
//! a pipeline's `max_running` is enforced by the claim itself. On PostgreSQL
//! all of it is inside `te_claim_candidates` (see the migrations: while no
//! pipeline is limited and the claim names no queue, it is the
//! plain locked walk, migration `claim_unlimited_walk`; otherwise
//! `te_claim_candidates_routed` locks the limit rows of `pipeline_limits`
//! and counts the pipeline's running tasks under that lock); on SQLite, where the write lock already orders
//! every claim, the walk leaves out full pipelines, and a batch that would
//! overfill one is rolled back to its savepoint and claimed one task at a
//! time ([`claim_sqlite`]).
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
use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use te_core::sql_types::{DbUuid, UtcTimestamp};
use te_core::toolkit::event_data;
use te_core::toolkit::statement::Bound;
use te_core::toolkit::{NewEvent, Statement, new_id, record_events, statement};
use te_core::{AnyConnection, ClaimResult, DalError, EventType};
use uuid::Uuid;

use crate::sql::statements::{
    POSTGRES_CLAIM_ONE_SQL, POSTGRES_CLAIM_SQL, SQLITE_CLAIM_QUEUE_SQL, SQLITE_CLAIM_SQL,
    SQLITE_OCCUPIED_SQL, SQLITE_PEEK_QUEUE_SQL,
};

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
    #[diesel(sql_type = Text)]
    queue: String,
    /// SQLite: the pipeline's `max_running` (PostgreSQL answers NULL: its
    /// claim enforces the limit before it updates).
    #[diesel(sql_type = Nullable<Integer>)]
    max_running: Option<i32>,
}

impl ClaimedRow {
    /// The claim order: highest priority first, then oldest, then by id.
    fn claim_order(&self) -> ClaimOrder {
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

/// The queues a claim takes from: `None` for every queue, else a sorted
/// list without repeats (checked by the caller: not empty, valid names).
pub(crate) type Queues = Option<Vec<String>>;

/// Claims up to `limit` (checked by the caller) ready tasks of `queues`,
/// for `runner` if given, with a `TaskClaimed` event each: one statement on
/// PostgreSQL, a few under the write lock on SQLite. Run it with
/// `toolkit::write_statement`.
///
/// `now` is the claim's time: each claimed task's `started_at` (which tells
/// this claim from a later one of the same task).
pub(crate) fn claim_ready(
    conn: &mut AnyConnection,
    runner: Option<Uuid>,
    limit: i64,
    queues: &Queues,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimResult>, DalError> {
    let rows = match conn {
        AnyConnection::Postgres(pg) => in_claim_order(
            claim_query(postgres_claim(limit), runner, limit, now)
                .bind::<Array<DbUuid>, _>(event_ids(limit))
                .bind::<Nullable<Array<Text>>, _>(queues.clone())
                .load::<ClaimedRow>(pg)?,
        ),
        AnyConnection::Sqlite(lite) => {
            let rows = in_claim_order(claim_sqlite(lite, runner, limit, queues, now)?);
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
            queue: row.queue,
        })
        .collect())
}

/// The SQLite claim, under the write lock. Every queue or one queue: one
/// statement; when it took more tasks of a limited pipeline than the
/// pipeline had room for (the walk leaves out full pipelines but cannot
/// count its own picks), it is rolled back to a savepoint and the claim is
/// made one task at a time, each claim seeing the ones before. Several
/// queues: one task at a time, each the first in claim order of the first
/// candidates of every queue.
fn claim_sqlite(
    lite: &mut SqliteConnection,
    runner: Option<Uuid>,
    limit: i64,
    queues: &Queues,
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedRow>, DalError> {
    let (sql, queue) = match queues.as_deref() {
        None => (SQLITE_CLAIM_SQL, None),
        Some([queue]) => (SQLITE_CLAIM_QUEUE_SQL, Some(queue.as_str())),
        Some(many) => return claim_sqlite_merged(lite, runner, limit, many, now),
    };
    let claim = |lite: &mut SqliteConnection, limit: i64| {
        let query = claim_query(sql, runner, limit, now);
        match queue {
            Some(queue) => query.bind::<Text, _>(queue).load::<ClaimedRow>(lite),
            None => query.load::<ClaimedRow>(lite),
        }
    };
    if limit == 1 {
        // One task of a pipeline that is not full never overfills it.
        return Ok(claim(lite, 1)?);
    }
    let batch = lite.transaction::<_, diesel::result::Error, _>(|lite| {
        let rows = claim(lite, limit)?;
        if overfills(lite, &rows)? {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        Ok(rows)
    });
    match batch {
        Ok(rows) => Ok(rows),
        Err(diesel::result::Error::RollbackTransaction) => {
            let mut rows = Vec::new();
            while (rows.len() as i64) < limit {
                let one = claim(lite, 1)?;
                if one.is_empty() {
                    break;
                }
                rows.extend(one);
            }
            Ok(rows)
        }
        Err(err) => Err(err.into()),
    }
}

/// True when `rows`, just claimed, put a limited pipeline over its
/// `max_running`.
fn overfills(lite: &mut SqliteConnection, rows: &[ClaimedRow]) -> QueryResult<bool> {
    let mut limited: Vec<(Uuid, i32)> = rows
        .iter()
        .filter_map(|row| row.max_running.map(|max| (row.pipeline_execution_id, max)))
        .collect();
    limited.sort_unstable();
    limited.dedup();
    for (pipeline, max_running) in limited {
        let occupied = statement(SQLITE_OCCUPIED_SQL)
            .bind::<DbUuid, _>(pipeline)
            .get_result::<Occupied>(lite)?
            .occupied;
        if occupied > i64::from(max_running) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What [`SQLITE_OCCUPIED_SQL`] answers.
#[derive(Debug, QueryableByName)]
struct Occupied {
    #[diesel(sql_type = BigInt)]
    occupied: i64,
}

/// The claim order of a queue's first candidate.
#[derive(Debug, QueryableByName)]
struct Head {
    #[diesel(sql_type = Integer)]
    priority: i32,
    #[diesel(sql_type = UtcTimestamp)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = DbUuid)]
    id: Uuid,
}

/// A task's place in claim order: highest priority, then oldest, then id.
type ClaimOrder = (std::cmp::Reverse<i32>, DateTime<Utc>, Uuid);

/// SQLite, several queues: up to `limit` tasks, one at a time, each the
/// first in claim order of the queues' first candidates (each a walk of
/// `task_executions_queue_ready_idx` stopped at one row).
fn claim_sqlite_merged(
    lite: &mut SqliteConnection,
    runner: Option<Uuid>,
    limit: i64,
    queues: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<ClaimedRow>, DalError> {
    let mut rows = Vec::new();
    while (rows.len() as i64) < limit {
        let mut best: Option<(ClaimOrder, &str)> = None;
        for queue in queues {
            let head = claim_query(SQLITE_PEEK_QUEUE_SQL, runner, 1, now)
                .bind::<Text, _>(queue.as_str())
                .get_result::<Head>(lite)
                .optional()?;
            if let Some(head) = head {
                let key = (std::cmp::Reverse(head.priority), head.created_at, head.id);
                if best.as_ref().is_none_or(|(best, _)| key < *best) {
                    best = Some((key, queue));
                }
            }
        }
        let Some((_, queue)) = best else { break };
        let one = claim_query(SQLITE_CLAIM_QUEUE_SQL, runner, 1, now)
            .bind::<Text, _>(queue)
            .load::<ClaimedRow>(lite)?;
        if one.is_empty() {
            break;
        }
        rows.extend(one);
    }
    Ok(rows)
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
