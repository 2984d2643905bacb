-- Routing, timing and parallelism limits: a task's queue and the instant
-- before which it is not claimed, a pipeline's limit on tasks running at
-- once, and the claim that honours all three.

ALTER TABLE task_executions ADD COLUMN queue TEXT NOT NULL DEFAULT 'default' CHECK (queue <> '');
ALTER TABLE task_executions ADD COLUMN run_after TIMESTAMPTZ;
ALTER TABLE pipeline_executions
    ADD COLUMN max_running INTEGER CHECK (max_running IS NULL OR max_running >= 1);

-- A claim of named queues walks the ready rows of one queue in claim order.
CREATE INDEX task_executions_queue_ready_idx
    ON task_executions (queue, priority DESC, created_at, id) WHERE status = 'Ready';
-- The earliest instant a delayed or retried ready task becomes due (the
-- wake-up timer of wait_for_ready): rows enter these only when delayed.
CREATE INDEX task_executions_run_after_idx
    ON task_executions (run_after) WHERE status = 'Ready' AND run_after IS NOT NULL;
CREATE INDEX task_executions_retry_due_idx
    ON task_executions (retry_at) WHERE status = 'Ready' AND retry_at IS NOT NULL;
-- Ready tasks reserved by a runner count toward their pipeline's limit.
CREATE INDEX task_executions_reserved_idx
    ON task_executions (pipeline_execution_id) WHERE status = 'Ready' AND claimed_by IS NOT NULL;

-- The limited pipelines, one row each, written when such a pipeline is
-- created (max_running never changes). A claim probes this small table per
-- candidate; a claim that meets a limited pipeline locks its row here, which
-- serializes the pipeline's admissions across every connection and host,
-- and counts the pipeline's running and reserved tasks afresh under that
-- lock. Nothing else locks these rows, so no other write waits on a claim.
CREATE TABLE pipeline_limits (
    pipeline_id UUID PRIMARY KEY REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    max_running INTEGER NOT NULL CHECK (max_running >= 1)
);

INSERT INTO pipeline_limits (pipeline_id, max_running)
SELECT id, max_running FROM pipeline_executions WHERE max_running IS NOT NULL;

CREATE FUNCTION te_limit_pipeline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pipeline_limits (pipeline_id, max_running) VALUES (NEW.id, NEW.max_running);
    RETURN NULL;
END
$$;

CREATE TRIGGER pipeline_executions_limit_insert
    AFTER INSERT ON pipeline_executions
    FOR EACH ROW WHEN (NEW.max_running IS NOT NULL)
    EXECUTE FUNCTION te_limit_pipeline();

-- Wake-ups: also when a task of a limited pipeline stops running (a slot
-- may have opened for a task the limit held back).
CREATE OR REPLACE FUNCTION te_notify_task_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM te_new_rows WHERE status = 'Ready')
       OR EXISTS (
           SELECT 1 FROM te_new_rows AS n
           WHERE n.status IN ('Completed', 'Failed', 'Skipped')
             AND EXISTS (SELECT 1 FROM pipeline_limits AS l
                         WHERE l.pipeline_id = n.pipeline_execution_id))
    THEN
        PERFORM pg_notify('te_task_ready', '');
    END IF;
    RETURN NULL;
END;
$$;

-- The claim's candidates, now with queues, delays and limits. Same contract
-- as the function it replaces (migration claim_without_statistics: sorting
-- disabled, so that every walk is an index walk in claim order stopped at
-- its LIMIT, with or without statistics), plus:
--
-- * claim_queues NULL: every queue, a walk of task_executions_ready_idx;
--   one queue: a walk of task_executions_queue_ready_idx; several: one walk
--   of that index per queue (each stopped at the limit), merged in claim
--   order (a sort of at most queues x limit rows, never of the backlog),
--   then locked by id.
-- * run_after gates a task as retry_at does.
-- * A candidate of a limited pipeline (a row in pipeline_limits) is kept
--   only while the pipeline has room: its pipeline_limits row is locked
--   (FOR UPDATE: claimers of one pipeline take turns; a claim waits only for
--   the first limit rows it locks, all at once in id order, and only tries
--   the locks of later rounds, so two claims never wait on each other in a
--   cycle), its running and reserved tasks are counted under that lock
--   (a fresh snapshot, which sees every claim committed before the lock was
--   granted), and at most max_running minus that count of its unreserved
--   candidates are kept. A candidate already reserved by this runner is
--   already counted. When the limit drops candidates, further rounds look
--   for more, leaving the full pipeline out, so a limited pipeline never
--   holds back another.
--
-- The first round, for every queue or one queue, is the plain locked walk;
-- when none of its candidates is of a limited pipeline (one probe of
-- pipeline_limits' primary key each) it is the answer.
CREATE FUNCTION te_claim_candidates(
    claim_now timestamptz, claim_runner uuid, wanted bigint, claim_queues text[])
RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE
ROWS 1
SET enable_sort = off
SET enable_incremental_sort = off
SET enable_seqscan = off
AS $$
DECLARE
    picked uuid[] := '{}';
    tried uuid[] := '{}';
    full_pipes uuid[] := '{}';
    held_limits uuid[] := '{}';
    room_pipes uuid[] := '{}';
    room_left bigint[] := '{}';
    found uuid[];
    batch uuid[];
    batch_pipes uuid[];
    batch_reserved boolean[];
    batch_limited boolean[];
    queues text[];
    any_limited boolean;
    need bigint;
    walked bigint;
    i integer;
    at integer;
    p uuid;
    first_round boolean := true;
BEGIN
    IF claim_queues IS NOT NULL THEN
        queues := ARRAY(SELECT DISTINCT q FROM unnest(claim_queues) AS q);
    END IF;
    LOOP
        need := wanted - cardinality(picked);
        EXIT WHEN need <= 0;
        IF first_round AND (queues IS NULL OR cardinality(queues) = 1) THEN
            -- The common case: one locked walk of one index.
            IF queues IS NULL THEN
                SELECT coalesce(array_agg(c.id), '{}'), coalesce(bool_or(c.limited), false)
                INTO batch, any_limited
                FROM (SELECT t.id,
                             EXISTS (SELECT 1 FROM pipeline_limits AS l
                                     WHERE l.pipeline_id = t.pipeline_execution_id) AS limited
                      FROM task_executions AS t
                      WHERE t.status = 'Ready'
                        AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
                        AND (t.run_after IS NULL OR t.run_after <= claim_now)
                        AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
                        AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
                      ORDER BY t.priority DESC, t.created_at, t.id
                      LIMIT need
                      FOR UPDATE OF t SKIP LOCKED) AS c;
            ELSE
                SELECT coalesce(array_agg(c.id), '{}'), coalesce(bool_or(c.limited), false)
                INTO batch, any_limited
                FROM (SELECT t.id,
                             EXISTS (SELECT 1 FROM pipeline_limits AS l
                                     WHERE l.pipeline_id = t.pipeline_execution_id) AS limited
                      FROM task_executions AS t
                      WHERE t.status = 'Ready'
                        AND t.queue = queues[1]
                        AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
                        AND (t.run_after IS NULL OR t.run_after <= claim_now)
                        AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
                        AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
                      ORDER BY t.priority DESC, t.created_at, t.id
                      LIMIT need
                      FOR UPDATE OF t SKIP LOCKED) AS c;
            END IF;
            IF NOT any_limited THEN
                RETURN QUERY SELECT unnest(batch);
                RETURN;
            END IF;
            walked := cardinality(batch);
        ELSE
            -- Candidates not tried yet, in claim order, without locks...
            IF queues IS NULL THEN
                found := ARRAY(
                    SELECT t.id FROM task_executions AS t
                    WHERE t.status = 'Ready'
                      AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
                      AND (t.run_after IS NULL OR t.run_after <= claim_now)
                      AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
                      AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
                      AND t.pipeline_execution_id <> ALL (full_pipes)
                      AND t.id <> ALL (tried) AND t.id <> ALL (picked)
                    ORDER BY t.priority DESC, t.created_at, t.id
                    LIMIT need);
            ELSE
                SELECT coalesce(array_agg(m.id ORDER BY m.priority DESC, m.created_at, m.id), '{}')
                INTO found
                FROM unnest(queues) AS q(name)
                CROSS JOIN LATERAL (
                    SELECT t.id, t.priority, t.created_at FROM task_executions AS t
                    WHERE t.status = 'Ready'
                      AND t.queue = q.name
                      AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
                      AND (t.run_after IS NULL OR t.run_after <= claim_now)
                      AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
                      AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
                      AND t.pipeline_execution_id <> ALL (full_pipes)
                      AND t.id <> ALL (tried) AND t.id <> ALL (picked)
                    ORDER BY t.priority DESC, t.created_at, t.id
                    LIMIT need) AS m;
                found := found[1:need];
            END IF;
            walked := cardinality(found);
            EXIT WHEN walked = 0;
            -- ...then locked by id, skipping (and not trying again) rows
            -- another claimer holds.
            -- (Rows looked up by primary key through the ids' unnest; the
            -- status written so that it matches no partial index.)
            batch := ARRAY(
                SELECT t.id FROM unnest(found) AS f(id)
                JOIN task_executions AS t ON t.id = f.id
                WHERE t.status IS NOT DISTINCT FROM 'Ready'
                  AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
                  AND (t.run_after IS NULL OR t.run_after <= claim_now)
                  AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
                FOR UPDATE OF t SKIP LOCKED);
            tried := tried || ARRAY(SELECT x FROM unnest(found) AS x WHERE x <> ALL (batch));
        END IF;
        -- The batch in claim order, with what the limits need to know.
        SELECT coalesce(array_agg(t.id ORDER BY t.priority DESC, t.created_at, t.id), '{}'),
               coalesce(array_agg(t.pipeline_execution_id ORDER BY t.priority DESC, t.created_at, t.id), '{}'),
               coalesce(array_agg(t.claimed_by IS NOT NULL ORDER BY t.priority DESC, t.created_at, t.id), '{}'),
               coalesce(array_agg(l.pipeline_id IS NOT NULL ORDER BY t.priority DESC, t.created_at, t.id), '{}')
        INTO batch, batch_pipes, batch_reserved, batch_limited
        FROM unnest(batch) AS b(id)
        JOIN task_executions AS t ON t.id = b.id
        LEFT JOIN pipeline_limits AS l ON l.pipeline_id = t.pipeline_execution_id;
        -- The limit rows not held yet: waited for, in id order, while this
        -- claim holds none; only tried once it holds some (a busy one is
        -- full for this claim).
        IF cardinality(held_limits) = 0 THEN
            held_limits := ARRAY(
                SELECT l.pipeline_id FROM pipeline_limits AS l
                WHERE l.pipeline_id = ANY (batch_pipes)
                  AND l.pipeline_id <> ALL (full_pipes)
                ORDER BY l.pipeline_id
                FOR UPDATE);
        ELSE
            held_limits := held_limits || ARRAY(
                SELECT l.pipeline_id FROM pipeline_limits AS l
                WHERE l.pipeline_id = ANY (batch_pipes)
                  AND l.pipeline_id <> ALL (held_limits)
                  AND l.pipeline_id <> ALL (full_pipes)
                FOR UPDATE SKIP LOCKED);
        END IF;
        FOR i IN 1 .. cardinality(batch) LOOP
            p := batch_pipes[i];
            IF NOT batch_limited[i] OR batch_reserved[i] THEN
                -- Unlimited, or reserved by this runner (already counted).
                picked := picked || batch[i];
                CONTINUE;
            END IF;
            IF p = ANY (full_pipes) OR NOT p = ANY (held_limits) THEN
                IF NOT p = ANY (full_pipes) THEN
                    full_pipes := full_pipes || p;
                END IF;
                tried := tried || batch[i];
                CONTINUE;
            END IF;
            at := array_position(room_pipes, p);
            IF at IS NULL THEN
                -- Counted under the lock, in a snapshot taken after it was
                -- granted: every claim of this pipeline committed before is seen.
                room_pipes := room_pipes || p;
                room_left := room_left || (
                    (SELECT l.max_running FROM pipeline_limits AS l WHERE l.pipeline_id = p)
                    - (SELECT count(*) FROM task_executions AS o
                       WHERE o.pipeline_execution_id = p AND o.status = 'Running')
                    - (SELECT count(*) FROM task_executions AS o
                       WHERE o.pipeline_execution_id = p
                         AND o.status = 'Ready' AND o.claimed_by IS NOT NULL));
                at := cardinality(room_pipes);
            END IF;
            IF room_left[at] > 0 THEN
                room_left[at] := room_left[at] - 1;
                picked := picked || batch[i];
            ELSE
                full_pipes := full_pipes || p;
                tried := tried || batch[i];
            END IF;
        END LOOP;
        -- A walk that found fewer rows than wanted has seen every row left.
        EXIT WHEN walked < need;
        first_round := false;
    END LOOP;
    RETURN QUERY SELECT unnest(picked);
END;
$$;

DROP FUNCTION te_claim_candidates(timestamptz, uuid, bigint);
