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
/// event's time), `$10` priority, `$11` the event's id. The other columns
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
         trigger_rules, task_configuration, created_at, updated_at, priority)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10 FROM pipeline
    WHERE pipeline.status <> 'Cancelled'
    RETURNING id
), logged AS (
",
    te_core::toolkit::insert_events_head!(),
    "
    SELECT $11, $2, task.id, 'TaskCreated',
           jsonb_build_object('task_name', $3::text, 'status', $4::text), NULL, $9
    FROM task
)
SELECT (SELECT pipeline.status FROM pipeline) AS pipeline_status,
       (SELECT count(*) FROM task) AS inserted"
);
