-- Pipeline executions, task executions, contexts, task metadata and the audit log.

CREATE TABLE contexts (
    id          UUID PRIMARY KEY,
    value       JSONB NOT NULL CHECK (jsonb_typeof(value) = 'object'),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE pipeline_executions (
    id                 UUID PRIMARY KEY,
    pipeline_name      TEXT NOT NULL CHECK (pipeline_name <> ''),
    pipeline_version   TEXT NOT NULL,
    status             TEXT NOT NULL
        CHECK (status IN ('Pending', 'Running', 'Completed', 'Failed', 'Cancelled')),
    context_id         UUID REFERENCES contexts (id) ON DELETE SET NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    completed_at       TIMESTAMPTZ,
    error_details      TEXT,
    recovery_attempts  INTEGER NOT NULL DEFAULT 0,
    last_recovery_at   TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE INDEX pipeline_executions_status_idx ON pipeline_executions (status);

CREATE TABLE task_executions (
    id                     UUID PRIMARY KEY,
    pipeline_execution_id  UUID NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    task_name              TEXT NOT NULL CHECK (task_name <> ''),
    status                 TEXT NOT NULL
        CHECK (status IN ('NotStarted', 'Ready', 'Running', 'Completed', 'Failed', 'Skipped')),
    sub_status             TEXT CHECK (sub_status IN ('Active', 'Deferred')),
    started_at             TIMESTAMPTZ,
    completed_at           TIMESTAMPTZ,
    attempt                INTEGER NOT NULL CHECK (attempt >= 1),
    max_attempts           INTEGER NOT NULL CHECK (max_attempts >= 1),
    error_details          TEXT,
    trigger_rules          JSONB NOT NULL,
    task_configuration     JSONB NOT NULL,
    retry_at               TIMESTAMPTZ,
    last_error             TEXT,
    recovery_attempts      INTEGER NOT NULL DEFAULT 0,
    last_recovery_at       TIMESTAMPTZ,
    claimed_by             UUID,
    heartbeat_at           TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    CONSTRAINT task_executions_pipeline_task_name_key UNIQUE (pipeline_execution_id, task_name)
);

-- Claiming scans only ready rows, oldest first; the index stays small as history grows.
CREATE INDEX task_executions_ready_idx ON task_executions (created_at, id) WHERE status = 'Ready';
CREATE INDEX task_executions_status_idx ON task_executions (status);
CREATE INDEX task_executions_pipeline_status_idx ON task_executions (pipeline_execution_id, status);
CREATE INDEX task_executions_created_idx ON task_executions (created_at, id);
CREATE INDEX task_executions_claimed_idx ON task_executions (heartbeat_at) WHERE claimed_by IS NOT NULL;

CREATE TABLE task_execution_metadata (
    id                     UUID PRIMARY KEY,
    task_execution_id      UUID NOT NULL UNIQUE REFERENCES task_executions (id) ON DELETE CASCADE,
    pipeline_execution_id  UUID NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    task_name              TEXT NOT NULL,
    context_id             UUID REFERENCES contexts (id) ON DELETE SET NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);

CREATE INDEX task_execution_metadata_pipeline_name_idx
    ON task_execution_metadata (pipeline_execution_id, task_name);

CREATE TABLE execution_events (
    sequence               BIGSERIAL PRIMARY KEY,
    id                     UUID NOT NULL UNIQUE,
    pipeline_execution_id  UUID NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    task_execution_id      UUID REFERENCES task_executions (id) ON DELETE CASCADE,
    event_type             TEXT NOT NULL,
    event_data             JSONB,
    runner_id              UUID,
    created_at             TIMESTAMPTZ NOT NULL
);

CREATE INDEX execution_events_task_idx ON execution_events (task_execution_id, sequence);
CREATE INDEX execution_events_pipeline_idx ON execution_events (pipeline_execution_id, sequence);
