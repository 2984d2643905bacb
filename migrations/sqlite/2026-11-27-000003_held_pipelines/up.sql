-- The pipelines whose tasks must not be claimed (paused or cancelled), kept
-- apart from pipeline_executions and maintained by triggers: a claim checks
-- this small table instead of reading pipeline rows (the same design as on
-- PostgreSQL, where those rows are under constant foreign-key share locks).

CREATE TABLE held_pipelines (
    pipeline_id BLOB PRIMARY KEY NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE
);

INSERT INTO held_pipelines (pipeline_id)
SELECT id FROM pipeline_executions WHERE paused = 1 OR status = 'Cancelled';

CREATE TRIGGER pipeline_executions_hold_insert
    AFTER INSERT ON pipeline_executions
    WHEN NEW.paused = 1 OR NEW.status = 'Cancelled'
BEGIN
    INSERT OR IGNORE INTO held_pipelines (pipeline_id) VALUES (NEW.id);
END;

CREATE TRIGGER pipeline_executions_hold_update
    AFTER UPDATE OF paused, status ON pipeline_executions
BEGIN
    DELETE FROM held_pipelines
    WHERE pipeline_id = NEW.id AND NOT (NEW.paused = 1 OR NEW.status = 'Cancelled');
    INSERT OR IGNORE INTO held_pipelines (pipeline_id)
    SELECT NEW.id WHERE NEW.paused = 1 OR NEW.status = 'Cancelled';
END;
