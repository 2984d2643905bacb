-- The PostgreSQL twin moves its wake-up to a row trigger; SQLite needs nothing
-- for wake-ups, and this twin keeps both backends at the same migration version.
SELECT 1;
