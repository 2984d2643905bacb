-- Reverses up.sql.
DROP TRIGGER pipeline_executions_limit_insert;
DROP TABLE pipeline_limits;
DROP INDEX task_executions_reserved_idx;
DROP INDEX task_executions_retry_due_idx;
DROP INDEX task_executions_run_after_idx;
DROP INDEX task_executions_queue_ready_idx;
ALTER TABLE pipeline_executions DROP COLUMN max_running;
ALTER TABLE task_executions DROP COLUMN run_after;
ALTER TABLE task_executions DROP COLUMN queue;
