DROP TRIGGER pipeline_executions_hold_update ON pipeline_executions;
DROP TRIGGER pipeline_executions_hold_insert ON pipeline_executions;
DROP FUNCTION te_hold_pipeline();
DROP TABLE held_pipelines;
