//! The batch claim: `Ready` tasks moved to `Running` so that no task is ever
//! handed to two callers. The only SQL of the DAL that differs by backend.
//!
//! - **PostgreSQL**: one statement, [`POSTGRES_CLAIM_SQL`]. Its candidates
//!   come from the function `te_claim_candidates` (migration
//!   `claim_without_statistics`), whose `SELECT … FOR UPDATE SKIP LOCKED`
//!   locks them, skipping rows another claimer has locked, so concurrent
//!   claimers take disjoint sets without waiting on each other. Its
//!   `status = 'Ready'` filter matches the partial index
//!   `task_executions_ready_idx (priority DESC, created_at, id)`, walked in
//!   claim order and stopped at the limit, which keeps the claim cheap however
//!   large the history grows; the function plans it with sorting disabled, so
//!   that it walks the index even on tables never analyzed.
//! - **SQLite**: one statement, [`SQLITE_CLAIM_SQL`]: `UPDATE … WHERE id IN
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
//! all of it is inside `te_claim_candidates` (see the migration: the limit
//! rows of `pipeline_limits` are locked and the pipeline's running tasks
//! counted under that lock); on SQLite, where the write lock already orders
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
use serde_json::json;
use te_core::sql_types::{DbUuid, UtcTimestamp};
use te_core::toolkit::statement::Bound;
use te_core::toolkit::{NewEvent, Statement, new_id, now, record_events, statement};
use te_core::{AnyConnection, ClaimResult, DalError, EventType};
use uuid::Uuid;

/// The PostgreSQL claim, with its `TaskClaimed` events, as ONE statement
/// with the limit `$limit` (a literal of the text):
/// atomic on its own, so a claim costs one round trip and one commit.
/// Binds: `$1` now, `$2` the runner (or NULL), `$3` the heartbeat (now for a
/// runner, else NULL), `$4` the limit, `$5` ids for the events (at least
/// `$4` of them; the n-th claimed task in claim order gets the n-th), `$6`
/// the queues to take from (NULL: every queue).
///
/// The candidates are selected and locked by `te_claim_candidates(now,
/// runner, limit)`, a PL/pgSQL function of the migrations whose query
/// filters `status = 'Ready'`, no retry in the future, no other runner's
/// reservation and no held pipeline (a `NOT IN` over `held_pipelines` that
/// the executor hashes once per claim), ordered by `priority DESC,
/// created_at, id`, `LIMIT` the limit, `FOR UPDATE SKIP LOCKED`. Measured
/// reason: written inline, on tables never analyzed PostgreSQL estimated
/// one ready row and planned a bitmap scan of every ready row and a sort (a
/// claim of one read and sorted 6,700 rows, and the per-task drain fell to
/// a third); the function's `SET enable_sort = off` leaves the walk of
/// `task_executions_ready_idx` stopped at the limit as the only plan, with
/// or without statistics, and PL/pgSQL keeps that plan per connection.
///
/// The candidates are a `MATERIALIZED` CTE, not an `IN (SELECT …)`: the
/// planner may run an `IN` subquery again for every outer row (a
/// nested-loop semi-join), and each run would lock the next `LIMIT` rows,
/// since rows this statement already updated are skipped, so the limit would
/// not hold. A materialized CTE runs exactly once.
///
/// The update re-checks the status as `IS NOT DISTINCT FROM 'Ready'` (the
/// same, `status` is never NULL), not `= 'Ready'`: the planner would take
/// `= 'Ready'` as a way into the partial ready index and, on tables never
/// analyzed, scan every ready row to join them with the few candidates (a
/// claim of one read 4,000 entries); written so, the claimed rows are looked
/// up by primary key.
///
/// A row reserved by a runner claim is a candidate only for that runner
/// (`claimed_by = NULL` is never true, so plain claims skip reserved rows).
/// The status names are constants of the schema, not user input.
macro_rules! postgres_claim_sql {
    ($limit:literal) => {
        concat!(
            "\
WITH claimable AS MATERIALIZED (
    SELECT c.id FROM te_claim_candidates($1, $2, ",
            $limit,
            ", $6::text[]) AS c(id)
), claimed AS (
UPDATE task_executions AS t
SET status = 'Running',
    sub_status = 'Active',
    started_at = $1,
    updated_at = $1,
    claimed_by = $2,
    heartbeat_at = $3
FROM claimable
WHERE t.id = claimable.id
  AND t.status IS NOT DISTINCT FROM 'Ready'
RETURNING t.id, t.pipeline_execution_id, t.task_name, t.attempt, t.created_at, t.priority,
          t.queue
), logged AS (
",
            te_core::toolkit::insert_events_head!(),
            "
SELECT ($5::uuid[])[c.n], c.pipeline_execution_id, c.id, 'TaskClaimed',
       jsonb_build_object('attempt', c.attempt), $2, $1
FROM (SELECT claimed.*,
             row_number() OVER (ORDER BY priority DESC, created_at, id) AS n
      FROM claimed) AS c
ORDER BY c.n
)
SELECT id, pipeline_execution_id, task_name, attempt, created_at, priority, queue,
       NULL::integer AS max_running
FROM claimed"
        )
    };
}

/// The PostgreSQL claim of `$4` tasks.
pub(crate) const POSTGRES_CLAIM_SQL: &str = postgres_claim_sql!("$4");

/// The PostgreSQL claim of one task, the per-task path, with its limit
/// written as a constant: PostgreSQL plans a statement whose `LIMIT` is a
/// parameter afresh on every execution (its generic plan, made for an
/// unknown limit, always looks costlier than one made for the bound limit),
/// while this one's plan is made once per connection and reused. Binds as
/// [`POSTGRES_CLAIM_SQL`]'s (the limit is bound but not used).
pub(crate) const POSTGRES_CLAIM_ONE_SQL: &str = postgres_claim_sql!("1");

/// The walk of the SQLite claim's candidates, through index `$index`
/// (`$queue` adds the queue's condition): `Ready`, due (`retry_at` and
/// `run_after`), not reserved by another runner, not in a held pipeline,
/// and not in a limited pipeline that is full (its running and reserved
/// tasks at its `max_running`; a task reserved by this runner is already
/// counted), in claim order, up to the limit. Binds: `?1` now, `?2` the
/// runner (or NULL), `?4` the limit, `?5` the queue (with `$queue`).
macro_rules! sqlite_walk {
    ($columns:literal, $index:literal, $queue:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM task_executions AS ready INDEXED BY ",
            $index,
            "
    WHERE ready.status = 'Ready'",
            $queue,
            "
      AND (ready.retry_at IS NULL OR ready.retry_at <= ?1)
      AND (ready.run_after IS NULL OR ready.run_after <= ?1)
      AND (ready.claimed_by IS NULL OR ready.claimed_by = ?2)
      AND NOT EXISTS (
          SELECT 1 FROM held_pipelines AS h
          WHERE h.pipeline_id = ready.pipeline_execution_id)
      AND (ready.claimed_by IS NOT NULL OR NOT EXISTS (
          SELECT 1 FROM pipeline_limits AS l
          WHERE l.pipeline_id = ready.pipeline_execution_id
            AND l.max_running <= (SELECT count(*) FROM task_executions AS o
                                  WHERE o.pipeline_execution_id = l.pipeline_id
                                    AND o.status = 'Running')
                               + (SELECT count(*) FROM task_executions AS o
                                  WHERE o.pipeline_execution_id = l.pipeline_id
                                    AND o.status = 'Ready' AND o.claimed_by IS NOT NULL)))
    ORDER BY ready.priority DESC, ready.created_at, ready.id
    LIMIT +?4"
        )
    };
}

/// The SQLite claim around the walk `$walk` ([`sqlite_walk!`]). Binds: `?1`
/// now, `?2` the runner (or NULL), `?3` the heartbeat (now for a runner,
/// else NULL), `?4` the limit, and the walk's.
///
/// One statement, run under the write lock taken by `BEGIN IMMEDIATE`: no
/// other connection can claim between the inner select and the update.
/// `status = 'Ready'` stays in the outer `WHERE` clause too, and `RETURNING`
/// reports exactly the rows this statement changed, with their pipeline's
/// `max_running` (one probe of `pipeline_limits`). `INDEXED BY` makes the
/// candidates come from the partial index named, walked in claim order and
/// stopped at the limit (without it SQLite's planner may prefer
/// `task_executions_status_idx` and sort every ready row). A paused or
/// cancelled pipeline is one probe of `held_pipelines` per candidate, a
/// limited one a probe of `pipeline_limits` (and, when limited, a count
/// of its running tasks). The status names are constants of the schema,
/// not user input.
///
/// The outer `+status = 'Ready'` keeps that check off every index: without
/// the unary plus SQLite finds the rows to update by walking
/// `task_executions_status_idx` over every ready task and testing each
/// against the few ids selected, instead of looking those ids up by primary
/// key, and a claim costs time in proportion to the ready backlog.
///
/// The limit is written `+?4`, not `?4`: SQLite marks a statement whose
/// `LIMIT` is a bare parameter as planned for that parameter's value, so
/// binding the next claim's limit would expire the prepared statement and
/// make every claim prepare it again. The unary plus leaves the limit a
/// value read at run time, and the statement is prepared once.
macro_rules! sqlite_claim {
    ($walk:expr) => {
        concat!(
            "\
UPDATE task_executions
SET status = 'Running',
    sub_status = 'Active',
    started_at = ?1,
    updated_at = ?1,
    claimed_by = ?2,
    heartbeat_at = ?3
WHERE +status = 'Ready'
  AND id IN (
    ",
            $walk,
            ")
RETURNING id, pipeline_execution_id, task_name, attempt, created_at, priority, queue,
          (SELECT l.max_running FROM pipeline_limits AS l
           WHERE l.pipeline_id = task_executions.pipeline_execution_id) AS max_running"
        )
    };
}

/// The SQLite claim of every queue ([`sqlite_claim!`] over
/// `task_executions_ready_idx`).
pub(crate) const SQLITE_CLAIM_SQL: &str =
    sqlite_claim!(sqlite_walk!("ready.id", "task_executions_ready_idx", ""));

/// The SQLite claim of one queue, `?5` ([`sqlite_claim!`] over
/// `task_executions_queue_ready_idx`).
pub(crate) const SQLITE_CLAIM_QUEUE_SQL: &str = sqlite_claim!(sqlite_walk!(
    "ready.id",
    "task_executions_queue_ready_idx",
    "\n      AND ready.queue = ?5"
));

/// SQLite: the claim order of the first candidate of queue `?5` (the walk
/// of [`SQLITE_CLAIM_QUEUE_SQL`], limit `?4` = 1), to merge several queues.
/// Binds as that claim's (`?3` unused).
const SQLITE_PEEK_QUEUE_SQL: &str = sqlite_walk!(
    "ready.priority, ready.created_at, ready.id",
    "task_executions_queue_ready_idx",
    "\n      AND ready.queue = ?5"
);

/// SQLite: how many tasks of pipeline `?1` are `Running` or reserved by a
/// runner (what its `max_running` bounds).
const SQLITE_OCCUPIED_SQL: &str = "\
SELECT (SELECT count(*) FROM task_executions AS o
        WHERE o.pipeline_execution_id = ?1 AND o.status = 'Running')
     + (SELECT count(*) FROM task_executions AS o
        WHERE o.pipeline_execution_id = ?1 AND o.status = 'Ready' AND o.claimed_by IS NOT NULL)
       AS occupied";

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
        .data(json!({ "attempt": self.attempt }))
        .runner(runner)
    }
}

/// The queues a claim takes from: `None` for every queue, else a sorted
/// list without repeats (checked by the caller: not empty, valid names).
pub(crate) type Queues = Option<Vec<String>>;

/// Claims up to `limit` (checked by the caller) ready tasks of `queues`,
/// for `runner` if given, with a `TaskClaimed` event each: one statement on
/// PostgreSQL, a few under the write lock on SQLite. Run it with
/// `write_statement`.
pub(crate) fn claim_ready(
    conn: &mut AnyConnection,
    runner: Option<Uuid>,
    limit: i64,
    queues: &Queues,
) -> Result<Vec<ClaimResult>, DalError> {
    let now = now();
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
        let mut best: Option<((std::cmp::Reverse<i32>, DateTime<Utc>, Uuid), &str)> = None;
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
pub(crate) type ClaimBinds = Bound<
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
