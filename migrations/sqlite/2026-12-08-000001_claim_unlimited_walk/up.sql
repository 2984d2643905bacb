-- The PostgreSQL claim's plain walk while no pipeline is limited (SQLite's
-- claim is one statement of te-claiming that already probes pipeline_limits
-- per candidate); this twin keeps both backends at the same migration
-- version.
SELECT 1;
