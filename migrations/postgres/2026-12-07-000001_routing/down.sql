-- Reverses up.sql: the claim function of claim_without_statistics, the
-- wake-up function of ready_notify, and the columns, indexes and table.
DROP FUNCTION te_claim_candidates(timestamptz, uuid, bigint, text[]);

CREATE FUNCTION te_claim_candidates(claim_now timestamptz, claim_runner uuid, wanted bigint)
RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE
ROWS 1
SET enable_sort = off
SET enable_incremental_sort = off
AS $$
BEGIN
    RETURN QUERY
    SELECT t.id FROM task_executions AS t
    WHERE t.status = 'Ready'
      AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
      AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
      AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
    ORDER BY t.priority DESC, t.created_at, t.id
    LIMIT wanted
    FOR UPDATE OF t SKIP LOCKED;
END;
$$;

CREATE OR REPLACE FUNCTION te_notify_task_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM te_new_rows WHERE status = 'Ready') THEN
        PERFORM pg_notify('te_task_ready', '');
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER pipeline_executions_limit_insert ON pipeline_executions;
DROP FUNCTION te_limit_pipeline();
DROP TABLE pipeline_limits;
DROP INDEX task_executions_reserved_idx;
DROP INDEX task_executions_retry_due_idx;
DROP INDEX task_executions_run_after_idx;
DROP INDEX task_executions_queue_ready_idx;
ALTER TABLE pipeline_executions DROP COLUMN max_running;
ALTER TABLE task_executions DROP COLUMN run_after;
ALTER TABLE task_executions DROP COLUMN queue;
