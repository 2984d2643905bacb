-- Routing, timing and parallelism limits: a task's queue and the instant
-- before which it is not claimed, a pipeline's limit on tasks running at
-- once (the same design as on PostgreSQL; see its twin).

ALTER TABLE task_executions ADD COLUMN queue TEXT NOT NULL DEFAULT 'default' CHECK (queue <> '');
ALTER TABLE task_executions ADD COLUMN run_after INTEGER;
ALTER TABLE pipeline_executions
    ADD COLUMN max_running INTEGER CHECK (max_running IS NULL OR max_running >= 1);

-- A claim of named queues walks the ready rows of one queue in claim order.
CREATE INDEX task_executions_queue_ready_idx
    ON task_executions (queue, priority DESC, created_at, id) WHERE status = 'Ready';
-- The earliest instant a delayed or retried ready task becomes due.
CREATE INDEX task_executions_run_after_idx
    ON task_executions (run_after) WHERE status = 'Ready' AND run_after IS NOT NULL;
CREATE INDEX task_executions_retry_due_idx
    ON task_executions (retry_at) WHERE status = 'Ready' AND retry_at IS NOT NULL;
-- Ready tasks reserved by a runner count toward their pipeline's limit.
CREATE INDEX task_executions_reserved_idx
    ON task_executions (pipeline_execution_id) WHERE status = 'Ready' AND claimed_by IS NOT NULL;

-- The limited pipelines, one row each, written when such a pipeline is
-- created (max_running never changes): a claim probes this small table per
-- candidate instead of reading pipeline rows.
CREATE TABLE pipeline_limits (
    pipeline_id BLOB PRIMARY KEY NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    max_running INTEGER NOT NULL CHECK (max_running >= 1)
);

INSERT INTO pipeline_limits (pipeline_id, max_running)
SELECT id, max_running FROM pipeline_executions WHERE max_running IS NOT NULL;

CREATE TRIGGER pipeline_executions_limit_insert
    AFTER INSERT ON pipeline_executions
    WHEN NEW.max_running IS NOT NULL
BEGIN
    INSERT INTO pipeline_limits (pipeline_id, max_running) VALUES (NEW.id, NEW.max_running);
END;
