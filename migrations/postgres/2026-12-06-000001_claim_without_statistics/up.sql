-- The claim's candidates, selected by a function that plans its query with
-- sorting disabled, so that the plan walks `task_executions_ready_idx` in
-- claim order and stops after `wanted` rows whatever the statistics say.
--
-- On a table never analyzed (a new deployment until autovacuum runs, or a
-- server with autovacuum off), PostgreSQL estimates `status = 'Ready'` with a
-- default selectivity of 0.5 % and the filters after it at 0.5 % more, so it
-- expects one candidate and prefers a bitmap scan of EVERY ready row followed
-- by a sort (measured: 6,700 ready rows read and sorted for a claim of one).
-- No rewrite of the query changes that for a claim of many rows (the estimate
-- of the index's rows stays at 0.5 % of the table), and PostgreSQL has no
-- per-statement planner setting; a function's SET clause is the one place a
-- setting applies to one query only. With `enable_sort = off` the only plan
-- that gives the claim order without a sort is the walk of the partial
-- index, which stops at the LIMIT. PL/pgSQL keeps the plan per connection.
--
-- The caller (the claim statement in te-claiming's claim.rs) updates the
-- rows returned, re-checking `status = 'Ready'`; the rows are locked here
-- `FOR UPDATE SKIP LOCKED` until its transaction ends.
CREATE FUNCTION te_claim_candidates(claim_now timestamptz, claim_runner uuid, wanted bigint)
RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE
ROWS 1
SET enable_sort = off
SET enable_incremental_sort = off
AS $$
BEGIN
    RETURN QUERY
    SELECT t.id FROM task_executions AS t
    WHERE t.status = 'Ready'
      AND (t.retry_at IS NULL OR t.retry_at <= claim_now)
      AND (t.claimed_by IS NULL OR t.claimed_by = claim_runner)
      AND t.pipeline_execution_id NOT IN (SELECT h.pipeline_id FROM held_pipelines AS h)
    ORDER BY t.priority DESC, t.created_at, t.id
    LIMIT wanted
    FOR UPDATE OF t SKIP LOCKED;
END;
$$;
