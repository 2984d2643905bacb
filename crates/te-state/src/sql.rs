//! The hand-written SQL of te-state (its catalogue): statements of fixed
//! text, each with its measured reason and its parameters, run as
//! [`te_core::toolkit::Statement`]s that each connection prepares once.

/// PostgreSQL: the coalesced `mark_completed` / `mark_failed` of several
/// tasks, each guarded as its own call would be, with their audit events, as
/// ONE statement over arrays (no `BEGIN`/`COMMIT`).
///
/// Measured reason: concurrent per-task completions each cost a statement
/// and a commit (a WAL flush); one statement for all the calls queued
/// meanwhile costs one of each.
///
/// Row `n` of the input (`unnest … WITH ORDINALITY`) is one call: the task
/// `$2[n]`, the runner that must hold its claim `$3[n]` (the nil UUID: not
/// checked), `$4[n]` true for `mark_failed` with the error `$5[n]` (ignored
/// for a completion), and `$6[n]` the id of its event. A completion applies
/// from `Running`, a failure from `NotStarted`, `Ready` or `Running`, as
/// the single-task transitions do; the columns set, and each event
/// (`TaskCompleted` without data, `TaskFailed` with `{"error": …}`, naming
/// the runner), are theirs. The result is the `n` of every call that
/// applied; a call that did not is answered by its single-task transition,
/// which says why. The task ids of one batch are distinct.
///
/// The input is joined to `task_executions` by primary key. The status
/// names are constants of the schema, not user input; `$1` is now.
pub(crate) const POSTGRES_FINISH_MANY_SQL: &str = concat!(
    "\
WITH input AS (
    SELECT i.id, NULLIF(i.runner, '00000000-0000-0000-0000-000000000000'::uuid) AS runner,
           i.failed, i.error, i.event_id, i.n
    FROM unnest($2::uuid[], $3::uuid[], $4::boolean[], $5::text[], $6::uuid[])
         WITH ORDINALITY AS i(id, runner, failed, error, event_id, n)
), changed AS (
UPDATE task_executions AS t
SET status = CASE WHEN input.failed THEN 'Failed' ELSE 'Completed' END,
    updated_at = $1,
    completed_at = $1,
    sub_status = NULL,
    claimed_by = NULL,
    heartbeat_at = NULL,
    error_details = CASE WHEN input.failed THEN input.error ELSE t.error_details END,
    last_error = CASE WHEN input.failed THEN input.error ELSE t.last_error END
FROM input
WHERE t.id = input.id
  AND (t.status IS NOT DISTINCT FROM 'Running'
       OR (input.failed AND t.status IN ('NotStarted', 'Ready')))
  AND (input.runner IS NULL OR t.claimed_by = input.runner)
RETURNING t.id, t.pipeline_execution_id, input.runner, input.failed, input.error,
          input.event_id, input.n
), logged AS (
",
    te_core::toolkit::insert_events_head!(),
    "
SELECT event_id, pipeline_execution_id, id,
       CASE WHEN failed THEN 'TaskFailed' ELSE 'TaskCompleted' END,
       CASE WHEN failed THEN jsonb_build_object('error', error) END,
       runner, $1
FROM changed
ORDER BY n
)
SELECT n FROM changed"
);
