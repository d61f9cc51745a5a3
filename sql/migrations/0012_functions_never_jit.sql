-- No JIT compilation in reservd's functions (the pool's prepared sessions
-- set the same, src/db/pool.c). Every statement here is a short OLTP
-- lookup; JIT pays off only for long analytic queries. With sequential
-- scans off (0010), a statement that has no index to use is costed at the
-- planner's "disabled" 1e10, far past jit_above_cost, and PostgreSQL then
-- compiled it on every execution: the waiting-list totals took about
-- 550 ms of JIT for a 0.07 ms aggregate (sql/statements/waitlist_totals.sql).
-- Like 0010's setting, a later CREATE OR REPLACE FUNCTION must repeat it
-- (SET jit = off), as replacing a function drops its settings
-- (test_migrations checks them).
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
        EXECUTE format('ALTER FUNCTION %s SET jit = off', f);
    END LOOP;
END
$$;
