//! The plan of the claim, for the tests that pin it: `EXPLAIN` of the claim
//! statement on either backend, and on PostgreSQL what one claim read from
//! the server's own counters.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use te_core::sql_types::{DbUuid, UtcTimestamp};
use te_core::toolkit::{now, statement};
use te_core::{AnyConnection, DalError};
use uuid::Uuid;

use crate::claim::{ClaimedRow, claim_query, event_ids, postgres_claim};
use crate::sql::statements::{SQLITE_CLAIM_QUEUE_SQL, SQLITE_CLAIM_SQL};

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
    /// Entries of `task_executions_queue_ready_idx` read.
    pub queue_index_entries: i64,
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
    queue_index_entries: i64,
    #[diesel(sql_type = BigInt)]
    sequential_scans: i64,
}

/// The counters of [`ClaimReads`] for the current transaction: entries of
/// the ready index returned, sequential scans of the table (for a table,
/// `numscans` counts sequential scans only).
const POSTGRES_CLAIM_READS_SQL: &str = "\
SELECT pg_stat_get_xact_tuples_returned('task_executions_ready_idx'::regclass) AS ready_index_entries,
       pg_stat_get_xact_tuples_returned('task_executions_queue_ready_idx'::regclass) AS queue_index_entries,
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
    explain_claim_from(conn, limit, runner, None)
}

/// As [`explain_claim`], for a claim of `queues` (`None`: every queue). On
/// SQLite the plan is the claim of one queue (the first named), the
/// statement every queue claim runs; on PostgreSQL the counters also tell
/// the entries read of `task_executions_queue_ready_idx`.
pub fn explain_claim_from(
    conn: &mut AnyConnection,
    limit: i64,
    runner: Option<Uuid>,
    queues: Option<&[&str]>,
) -> Result<ClaimPlan, DalError> {
    let queues: Option<Vec<String>> =
        queues.map(|queues| queues.iter().map(|q| (*q).to_owned()).collect());
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
                .bind::<Nullable<Array<Text>>, _>(queues.clone())
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
                    .bind::<Nullable<Array<Text>>, _>(queues.clone())
                    .load::<ClaimedRow>(pg)?;
                let after = statement(POSTGRES_CLAIM_READS_SQL).get_result::<Counters>(pg)?;
                reads = Some(ClaimReads {
                    ready_index_entries: after.ready_index_entries - before.ready_index_entries,
                    queue_index_entries: after.queue_index_entries - before.queue_index_entries,
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
            let query = |sql: &str| {
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind::<UtcTimestamp, _>(now)
                    .bind::<Nullable<DbUuid>, _>(runner)
                    .bind::<Nullable<UtcTimestamp>, _>(heartbeat)
                    .bind::<BigInt, _>(limit)
            };
            let lines = match queues.as_ref().and_then(|queues| queues.first()) {
                Some(queue) => query(SQLITE_CLAIM_QUEUE_SQL)
                    .bind::<Text, _>(queue.as_str())
                    .load::<PlanLine>(lite)?,
                None => query(SQLITE_CLAIM_SQL).load::<PlanLine>(lite)?,
            }
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
