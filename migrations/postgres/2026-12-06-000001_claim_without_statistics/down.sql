DROP FUNCTION te_claim_candidates(timestamptz, uuid, bigint);
