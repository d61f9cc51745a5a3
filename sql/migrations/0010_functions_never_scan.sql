-- reservd's functions look rows up by index, and keep doing so when the
-- statistics say a table is empty (issue 11). VACUUM ANALYZE of a new
-- database, after its users are loaded and before its first on-sale,
-- records reservations as 0 pages and 0 rows. A PL/pgSQL function plans
-- each statement once per session and keeps the plan; planned against
-- "empty", the lookup of a user's active reservation is a sequential scan
-- that costs nothing. It stays one, scanning the whole growing table for
-- every request, until autovacuum analyzes the table again (up to its
-- naptime, a minute, after the first 50 rows): measured on a hot batch
-- event, 1,847 req/s instead of about 20,000 at 19,000 rows, and falling.
-- With sequential scans off, the planner takes the index whatever the
-- statistics say; a statement that has no index to use still scans.
-- Every function of the schema in PL/pgSQL gets the setting here; a later
-- CREATE OR REPLACE FUNCTION must repeat it (SET enable_seqscan = off), as
-- replacing a function drops its settings (test_migrations checks them).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE l.lanname = 'plpgsql' AND p.proname LIKE 'reservd\_%'
           AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET enable_seqscan = off', f);
    END LOOP;
END
$$;
