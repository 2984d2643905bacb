-- Pipeline control: task priorities, paused pipelines, a pipeline's final
-- context, and the indexes for claiming by priority, listing and pruning.

ALTER TABLE task_executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

ALTER TABLE pipeline_executions ADD COLUMN paused BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE pipeline_executions
    ADD COLUMN final_context_id UUID REFERENCES contexts (id) ON DELETE SET NULL;

-- Claiming scans only ready rows in claim order: highest priority first, then oldest.
DROP INDEX task_executions_ready_idx;
CREATE INDEX task_executions_ready_idx
    ON task_executions (priority DESC, created_at, id) WHERE status = 'Ready';

-- Listing pipelines pages on (created_at, id); pruning finds finished ones by completed_at.
CREATE INDEX pipeline_executions_created_idx ON pipeline_executions (created_at, id);
CREATE INDEX pipeline_executions_finished_idx ON pipeline_executions (completed_at)
    WHERE status IN ('Completed', 'Failed', 'Cancelled');
