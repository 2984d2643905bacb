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
/// `$4` of them; the n-th claimed task in claim order gets the n-th).
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
            ") AS c(id)
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
RETURNING t.id, t.pipeline_execution_id, t.task_name, t.attempt, t.created_at, t.priority
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
SELECT id, pipeline_execution_id, task_name, attempt, created_at, priority FROM claimed"
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

/// The SQLite claim. Binds: `?1` now, `?2` the runner (or NULL), `?3` the
/// heartbeat (now for a runner, else NULL), `?4` the limit.
///
/// One statement, run under the write lock taken by `BEGIN IMMEDIATE`: no
/// other connection can claim between the inner select and the update.
/// `status = 'Ready'` stays in the outer `WHERE` clause too, and `RETURNING`
/// reports exactly the rows this statement changed. `INDEXED BY` makes the
/// candidates come from the partial index `task_executions_ready_idx`,
/// walked in claim order and stopped at the limit (without it SQLite's
/// planner may prefer `task_executions_status_idx` and sort every ready
/// row). A paused or cancelled pipeline is one probe of `held_pipelines`
/// per candidate. The status names are constants of the schema, not user input.
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
const SQLITE_CLAIM_SQL: &str = "\
UPDATE task_executions
SET status = 'Running',
    sub_status = 'Active',
    started_at = ?1,
    updated_at = ?1,
    claimed_by = ?2,
    heartbeat_at = ?3
WHERE +status = 'Ready'
  AND id IN (
    SELECT ready.id FROM task_executions AS ready INDEXED BY task_executions_ready_idx
    WHERE ready.status = 'Ready'
      AND (ready.retry_at IS NULL OR ready.retry_at <= ?1)
      AND (ready.claimed_by IS NULL OR ready.claimed_by = ?2)
      AND NOT EXISTS (
          SELECT 1 FROM held_pipelines AS h
          WHERE h.pipeline_id = ready.pipeline_execution_id)
    ORDER BY ready.priority DESC, ready.created_at, ready.id
    LIMIT +?4)
RETURNING id, pipeline_execution_id, task_name, attempt, created_at, priority";

/// One row the claim changed.
#[derive(Debug, QueryableByName)]
struct ClaimedRow {
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
        .data(json!({ "attempt": self.attempt }))
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
fn postgres_claim(limit: i64) -> &'static str {
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
fn claim_query(
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
fn event_ids(limit: i64) -> Vec<Uuid> {
    (0..limit).map(|_| new_id()).collect()
}

/// One line of a query plan.
#[derive(Debug, QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = detail)]
    detail: String,
}

/// How a claim found its candidates, for the tests that pin the claim's plan
/// (see [`explain_claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlan {
    /// The plan of the claim statement, one line per entry: SQLite's
    /// `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` lines (on
    /// PostgreSQL the candidates are a scan of `te_claim_candidates`, whose
    /// own query is not shown).
    pub lines: Vec<String>,
    /// PostgreSQL: what the claim read when it ran once (rolled back), from
    /// the server's own counters: the plan inside `te_claim_candidates` as
    /// executed. `None` on SQLite.
    pub reads: Option<ClaimReads>,
}

/// What one PostgreSQL claim read, from the server's counters of its own
/// transaction (`pg_stat_get_xact_*`, read before and after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimReads {
    /// Entries of `task_executions_ready_idx` read.
    pub ready_index_entries: i64,
    /// Sequential scans of `task_executions`.
    pub sequential_scans: i64,
    /// Rows the claim changed (the rows it returned).
    pub claimed: usize,
}

/// The server's counters of [`ClaimReads`].
#[derive(Debug, QueryableByName)]
struct Counters {
    #[diesel(sql_type = BigInt)]
    ready_index_entries: i64,
    #[diesel(sql_type = BigInt)]
    sequential_scans: i64,
}

/// The counters of [`ClaimReads`] for the current transaction: entries of
/// the ready index returned, sequential scans of the table (for a table,
/// `numscans` counts sequential scans only).
const POSTGRES_CLAIM_READS_SQL: &str = "\
SELECT pg_stat_get_xact_tuples_returned('task_executions_ready_idx'::regclass) AS ready_index_entries,
       pg_stat_get_xact_numscans('task_executions'::regclass) AS sequential_scans";

/// The plan of the claim statement of `limit` tasks (the per-task text for
/// 1, the batch text otherwise), for `runner` if given (a runner claim), as
/// the claim would run it now. On PostgreSQL the claim is also run once, in
/// a transaction rolled back afterwards, to read the server's counters of
/// what it read ([`ClaimPlan::reads`]). Used by tests to check that the claim
/// walks `task_executions_ready_idx` in order, without a sort and without
/// reading every ready row, whatever the tables' statistics.
pub fn explain_claim(
    conn: &mut AnyConnection,
    limit: i64,
    runner: Option<Uuid>,
) -> Result<ClaimPlan, DalError> {
    let now = now();
    let heartbeat = runner.map(|_| now);
    match conn {
        AnyConnection::Postgres(pg) => {
            let sql = postgres_claim(limit);
            let lines = diesel::sql_query(format!("EXPLAIN {sql}"))
                .bind::<UtcTimestamp, _>(now)
                .bind::<Nullable<DbUuid>, _>(runner)
                .bind::<Nullable<UtcTimestamp>, _>(heartbeat)
                .bind::<BigInt, _>(limit)
                .bind::<Array<DbUuid>, _>(event_ids(limit))
                .load::<PgPlanLine>(pg)?
                .into_iter()
                .map(|line| line.plan)
                .collect();
            let mut reads = None;
            // Rolled back: the counters are read inside the claim's
            // transaction, and the claim leaves nothing behind.
            let _ = pg.transaction::<(), diesel::result::Error, _>(|pg| {
                // The counters may hold earlier transactions' counts not yet
                // reported to the server: the claim's are the difference.
                let before = statement(POSTGRES_CLAIM_READS_SQL).get_result::<Counters>(pg)?;
                let claimed = claim_query(sql, runner, limit, now)
                    .bind::<Array<DbUuid>, _>(event_ids(limit))
                    .load::<ClaimedRow>(pg)?;
                let after = statement(POSTGRES_CLAIM_READS_SQL).get_result::<Counters>(pg)?;
                reads = Some(ClaimReads {
                    ready_index_entries: after.ready_index_entries - before.ready_index_entries,
                    sequential_scans: after.sequential_scans - before.sequential_scans,
                    claimed: claimed.len(),
                });
                Err(diesel::result::Error::RollbackTransaction)
            });
            let reads = reads.ok_or_else(|| {
                DalError::from(diesel::result::Error::QueryBuilderError(
                    "the claim's counters could not be read".into(),
                ))
            })?;
            Ok(ClaimPlan {
                lines,
                reads: Some(reads),
            })
        }
        AnyConnection::Sqlite(lite) => {
            let lines = diesel::sql_query(format!("EXPLAIN QUERY PLAN {SQLITE_CLAIM_SQL}"))
                .bind::<UtcTimestamp, _>(now)
                .bind::<Nullable<DbUuid>, _>(runner)
                .bind::<Nullable<UtcTimestamp>, _>(heartbeat)
                .bind::<BigInt, _>(limit)
                .load::<PlanLine>(lite)?
                .into_iter()
                .map(|line| line.detail)
                .collect();
            Ok(ClaimPlan { lines, reads: None })
        }
    }
}

/// One line of PostgreSQL's `EXPLAIN`.
#[derive(Debug, QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    plan: String,
}
