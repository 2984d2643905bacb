-- Reverses up.sql: back to the statement triggers of 2026-11-27-000002_ready_notify.
DROP TRIGGER task_executions_ready_update ON task_executions;
DROP TRIGGER task_executions_ready_insert ON task_executions;
DROP FUNCTION te_notify_task_ready();

CREATE FUNCTION te_notify_task_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM te_new_rows WHERE status = 'Ready') THEN
        PERFORM pg_notify('te_task_ready', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER task_executions_ready_insert
    AFTER INSERT ON task_executions
    REFERENCING NEW TABLE AS te_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_task_ready();

CREATE TRIGGER task_executions_ready_update
    AFTER UPDATE ON task_executions
    REFERENCING NEW TABLE AS te_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_task_ready();
