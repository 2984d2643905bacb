//! The claim statements of both backends, the only SQL of the DAL written
//! once per backend: why each is written so is told beside it; the test
//! that pins both plans is
//! `pipeline_control::the_claim_walks_the_ready_index_in_order_without_a_sort`,
//! and `claiming::*` hold both backends to the same claims.

/// The PostgreSQL claim, with its `TaskClaimed` events, as ONE statement
/// with the limit `$limit` (a literal of the text):
/// atomic on its own, so a claim costs one round trip and one commit.
/// Binds: `$1` now, `$2` the runner (or NULL), `$3` the heartbeat (now for a
/// runner, else NULL), `$4` the limit, `$5` ids for the events (at least
/// `$4` of them; the n-th claimed task in claim order gets the n-th), `$6`
/// the queues to take from (NULL: every queue).
///
/// The candidates are selected and locked by `te_claim_candidates(now,
/// runner, limit, queues)`, a PL/pgSQL function of the migrations (while no
/// pipeline is limited and no queue is named, the plain walk below;
/// otherwise `te_claim_candidates_routed`, which also counts limits), whose query
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
       jsonb_build_object('",
            te_core::toolkit::event_key!(attempt),
            "', c.attempt), $2, $1
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
pub(crate) const SQLITE_PEEK_QUEUE_SQL: &str = sqlite_walk!(
    "ready.priority, ready.created_at, ready.id",
    "task_executions_queue_ready_idx",
    "\n      AND ready.queue = ?5"
);

/// SQLite: how many tasks of pipeline `?1` are `Running` or reserved by a
/// runner (what its `max_running` bounds).
pub(crate) const SQLITE_OCCUPIED_SQL: &str = "\
SELECT (SELECT count(*) FROM task_executions AS o
        WHERE o.pipeline_execution_id = ?1 AND o.status = 'Running')
     + (SELECT count(*) FROM task_executions AS o
        WHERE o.pipeline_execution_id = ?1 AND o.status = 'Ready' AND o.claimed_by IS NOT NULL)
       AS occupied";
