-- Reverses up.sql (nothing to reverse).
SELECT 1;
