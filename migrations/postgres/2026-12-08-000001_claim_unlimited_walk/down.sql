-- Reverses up.sql: the claim calls te_claim_candidates of migration routing
-- again.
DROP FUNCTION te_claim_candidates(timestamptz, uuid, bigint, text[]);
ALTER FUNCTION te_claim_candidates_routed(timestamptz, uuid, bigint, text[])
    RESET plan_cache_mode;
ALTER FUNCTION te_claim_candidates_routed(timestamptz, uuid, bigint, text[])
    RENAME TO te_claim_candidates;
