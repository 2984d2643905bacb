-- The SQLite claim names its index (`INDEXED BY task_executions_ready_idx`)
-- and needs no statistics; this twin keeps both backends at the same
-- migration version as PostgreSQL's claim-candidates function.
SELECT 1;
