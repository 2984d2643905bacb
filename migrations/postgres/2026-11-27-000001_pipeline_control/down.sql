-- Reverses up.sql.
DROP INDEX pipeline_executions_finished_idx;
DROP INDEX pipeline_executions_created_idx;
DROP INDEX task_executions_ready_idx;
CREATE INDEX task_executions_ready_idx ON task_executions (created_at, id) WHERE status = 'Ready';
ALTER TABLE pipeline_executions DROP COLUMN final_context_id;
ALTER TABLE pipeline_executions DROP COLUMN paused;
ALTER TABLE task_executions DROP COLUMN priority;
