-- The wake-up of a task left `Ready` is sent by a row trigger that fires only
-- for such rows (its WHEN clause), instead of a statement trigger that
-- captured every changed row and ran a query over them after every insert
-- and update: claims and completions, the per-task path, no longer run a
-- trigger at all. Same channel, same transaction; one transaction's identical
-- notifications are still folded into one.

DROP TRIGGER task_executions_ready_update ON task_executions;
DROP TRIGGER task_executions_ready_insert ON task_executions;
DROP FUNCTION te_notify_task_ready();

CREATE FUNCTION te_notify_task_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('te_task_ready', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER task_executions_ready_insert
    AFTER INSERT ON task_executions
    FOR EACH ROW WHEN (NEW.status = 'Ready')
    EXECUTE FUNCTION te_notify_task_ready();

CREATE TRIGGER task_executions_ready_update
    AFTER UPDATE ON task_executions
    FOR EACH ROW WHEN (NEW.status = 'Ready')
    EXECUTE FUNCTION te_notify_task_ready();
