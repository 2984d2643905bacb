//! The hand-written SQL of te-crud (its catalogue): statements of fixed text,
//! each with its measured reason and its parameters, run as
//! [`te_core::toolkit::Statement`]s that each connection prepares once.

/// PostgreSQL: creates one task execution and its `TaskCreated` event in ONE
/// statement, a data-modifying CTE, with no `BEGIN`/`COMMIT` around it.
///
/// Measured reason: the transaction it replaces was five round trips
/// (`BEGIN`, the pipeline's lock, the task, its event, `COMMIT`), and a
/// creation one by one cost twice what a single `INSERT` costs.
///
/// It keeps the guarantee of the transaction: the pipeline's row is read
/// `FOR SHARE` (which conflicts with the cancel's `FOR NO KEY UPDATE`), and
/// the task is inserted only when the pipeline exists and is not
/// `Cancelled`, so a creation racing with a cancel either commits first (and
/// the cancel skips the task) or waits for the cancel and is refused. The
/// result tells the caller which: `pipeline_status` NULL (no such pipeline),
/// `Cancelled` (refused, nothing written), else `inserted` is 1. A task name
/// already used in the pipeline fails the whole statement (unique
/// violation), writing nothing.
///
/// Binds: `$1` the task's id, `$2` its pipeline's id, `$3` task name, `$4`
/// status, `$5` attempt, `$6` max attempts, `$7` trigger rules, `$8` task
/// configuration, `$9` the creation time (`created_at`, `updated_at` and the
/// event's time), `$10` priority, `$11` the event's id, `$12` the queue,
/// `$13` `run_after` (or NULL). The other columns
/// take their defaults (NULL, `recovery_attempts` 0), as a new row has them.
/// The event's data is `{"task_name": $3, "status": $4}`, as the DSL path
/// writes it; tests hold the stored row and event to what the DSL path
/// stores (`crud::a_task_created_alone_is_stored_as_the_bulk_path_stores_it`).
pub(crate) const POSTGRES_CREATE_TASK_SQL: &str = concat!(
    "\
WITH pipeline AS (
    SELECT p.status FROM pipeline_executions AS p WHERE p.id = $2 FOR SHARE
), task AS (
    INSERT INTO task_executions
        (id, pipeline_execution_id, task_name, status, attempt, max_attempts,
         trigger_rules, task_configuration, created_at, updated_at, priority, queue, run_after)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $12, $13 FROM pipeline
    WHERE pipeline.status <> 'Cancelled'
    RETURNING id
), logged AS (
",
    te_core::toolkit::insert_events_head!(),
    "
    SELECT $11, $2, task.id, 'TaskCreated',
           jsonb_build_object('",
    te_core::toolkit::event_key!(task_name),
    "', $3::text, '",
    te_core::toolkit::event_key!(status),
    "', $4::text), NULL, $9
    FROM task
)
SELECT (SELECT pipeline.status FROM pipeline) AS pipeline_status,
       (SELECT count(*) FROM task) AS inserted"
);

/// PostgreSQL: creates many task executions and one `TaskCreated` event each
/// in ONE statement of fixed text, whatever their number: one array
/// parameter per column (`unnest`), instead of multi-row `VALUES` lists of
/// 18 binds per row, split at the bind limit, with their events in more
/// statements of the same kind, all inside `BEGIN`/`COMMIT`.
///
/// Measured reason: batched creation (200 tasks per call) reached half of
/// what a peer reaches with one array statement; the multi-row text changed
/// with every batch size (parsed and planned anew each time) and took
/// thousands of binds.
///
/// All or nothing, as the transaction it replaces: the pipelines named are
/// read `FOR SHARE` in id order (conflicting with a cancel's lock, as
/// [`POSTGRES_CREATE_TASK_SQL`] does), and the rows are inserted only when
/// every pipeline exists and none is `Cancelled`; the answer names the first
/// cancelled pipeline (`cancelled`) or else the first missing one
/// (`missing`), each NULL when there is none, and `inserted` counts the rows
/// written. A repeated task name fails the whole statement (unique
/// violation), writing nothing. Events are written in input order, for the
/// rows inserted.
///
/// Binds, arrays of one element per task, in input order: `$1` ids, `$2`
/// pipeline ids, `$3` task names, `$4` statuses, `$5` attempts, `$6` max
/// attempts, `$7` trigger rules, `$8` task configurations, `$9` creation
/// times (also `updated_at` and the event's time), `$10` priorities, `$11`
/// the events' ids, `$13` queues, `$14` `run_after` instants (NULL for
/// none); and `$12` the distinct pipeline ids, sorted. The other
/// columns take their defaults, as a new row has them. Tests hold the rows
/// and events to what the DSL path stores
/// (`crud::a_task_created_alone_is_stored_as_the_bulk_path_stores_it`,
/// `crud::tasks_created_in_bulk_are_stored_as_the_dsl_stores_them`).
pub(crate) const POSTGRES_CREATE_TASKS_SQL: &str = concat!(
    "\
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[],
                         $6::int4[], $7::jsonb[], $8::jsonb[], $9::timestamptz[],
                         $10::int4[], $11::uuid[], $13::text[], $14::timestamptz[])
        WITH ORDINALITY AS i(id, pipeline_execution_id, task_name, status, attempt,
                             max_attempts, trigger_rules, task_configuration,
                             created_at, priority, event_id, queue, run_after, n)
), pipelines AS (
    SELECT p.id, p.status FROM pipeline_executions AS p
    WHERE p.id = ANY($12::uuid[])
    ORDER BY p.id
    FOR SHARE
), allowed AS (
    SELECT count(*) = cardinality($12::uuid[])
           AND NOT coalesce(bool_or(pipelines.status = 'Cancelled'), false) AS ok
    FROM pipelines
), tasks AS (
    INSERT INTO task_executions
        (id, pipeline_execution_id, task_name, status, attempt, max_attempts,
         trigger_rules, task_configuration, created_at, updated_at, priority, queue, run_after)
    SELECT i.id, i.pipeline_execution_id, i.task_name, i.status, i.attempt, i.max_attempts,
           i.trigger_rules, i.task_configuration, i.created_at, i.created_at, i.priority,
           i.queue, i.run_after
    FROM input AS i
    WHERE (SELECT allowed.ok FROM allowed)
    ORDER BY i.n
    RETURNING id
), logged AS (
",
    te_core::toolkit::insert_events_head!(),
    "
    SELECT i.event_id, i.pipeline_execution_id, i.id, 'TaskCreated',
           jsonb_build_object('",
    te_core::toolkit::event_key!(task_name),
    "', i.task_name, '",
    te_core::toolkit::event_key!(status),
    "', i.status), NULL, i.created_at
    FROM input AS i JOIN tasks ON tasks.id = i.id
    ORDER BY i.n
)
SELECT (SELECT p.id FROM pipelines AS p WHERE p.status = 'Cancelled' ORDER BY p.id LIMIT 1)
           AS cancelled,
       (SELECT x.id FROM unnest($12::uuid[]) AS x(id)
        WHERE x.id NOT IN (SELECT pipelines.id FROM pipelines) ORDER BY x.id LIMIT 1)
           AS missing,
       (SELECT count(*) FROM tasks) AS inserted"
);

/// The pipeline execution's `status` is terminal, written with literals:
/// PostgreSQL uses the partial index `pipeline_executions_finished_idx`
/// (whose predicate is this text) only for a condition that implies its
/// predicate at planning time, which a bound list of statuses does not. The
/// status names are constants of the schema, not user input.
pub(crate) fn terminal_pipeline() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql("pipeline_executions.status IN ('Completed', 'Failed', 'Cancelled')")
}
