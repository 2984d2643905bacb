-- Reverses up.sql.
DROP TABLE execution_events;
DROP TABLE task_execution_metadata;
DROP TABLE task_executions;
DROP TABLE pipeline_executions;
DROP TABLE contexts;
