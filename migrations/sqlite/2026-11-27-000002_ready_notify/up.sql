-- Wake-ups need nothing in a SQLite database (the handle wakes its own waiters
-- and polls `PRAGMA data_version` for other processes); this twin keeps both
-- backends at the same migration version.
SELECT 1;
