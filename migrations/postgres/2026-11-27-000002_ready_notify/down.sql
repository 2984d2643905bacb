-- Reverses up.sql.
DROP TRIGGER pipeline_executions_resumed ON pipeline_executions;
DROP FUNCTION te_notify_pipeline_resumed();
DROP TRIGGER task_executions_ready_update ON task_executions;
DROP TRIGGER task_executions_ready_insert ON task_executions;
DROP FUNCTION te_notify_task_ready();
