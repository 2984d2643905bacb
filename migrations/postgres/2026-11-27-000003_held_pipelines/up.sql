-- The pipelines whose tasks must not be claimed (paused or cancelled), kept
-- apart from pipeline_executions and maintained by triggers: a claim checks
-- this small table instead of reading pipeline rows, which the foreign-key
-- check of every audit event locks (reading rows under constant share locks
-- made concurrent claims several times slower).

CREATE TABLE held_pipelines (
    pipeline_id UUID PRIMARY KEY REFERENCES pipeline_executions (id) ON DELETE CASCADE
);

INSERT INTO held_pipelines (pipeline_id)
SELECT id FROM pipeline_executions WHERE paused OR status = 'Cancelled';

CREATE FUNCTION te_hold_pipeline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.paused OR NEW.status = 'Cancelled' THEN
        INSERT INTO held_pipelines (pipeline_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM held_pipelines WHERE pipeline_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER pipeline_executions_hold_insert
    AFTER INSERT ON pipeline_executions
    FOR EACH ROW WHEN (NEW.paused OR NEW.status = 'Cancelled')
    EXECUTE FUNCTION te_hold_pipeline();

CREATE TRIGGER pipeline_executions_hold_update
    AFTER UPDATE OF paused, status ON pipeline_executions
    FOR EACH ROW WHEN (OLD.paused IS DISTINCT FROM NEW.paused OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION te_hold_pipeline();
