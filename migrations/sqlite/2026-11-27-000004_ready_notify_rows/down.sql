-- Reverses up.sql (nothing).
SELECT 1;
