-- Wake-ups: a NOTIFY on channel `te_task_ready`, sent in the same transaction
-- as any write that leaves a task `Ready` (a create, mark_ready, a retry, a
-- recovery, a reset) or resumes a paused pipeline. PostgreSQL delivers it to
-- listeners when that transaction commits, and never if it rolls back; one
-- transaction's identical notifications are folded into one.

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

CREATE FUNCTION te_notify_pipeline_resumed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM te_new_pipelines n JOIN te_old_pipelines o ON o.id = n.id
        WHERE o.paused AND NOT n.paused
    ) THEN
        PERFORM pg_notify('te_task_ready', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER pipeline_executions_resumed
    AFTER UPDATE ON pipeline_executions
    REFERENCING OLD TABLE AS te_old_pipelines NEW TABLE AS te_new_pipelines
    FOR EACH STATEMENT EXECUTE FUNCTION te_notify_pipeline_resumed();
