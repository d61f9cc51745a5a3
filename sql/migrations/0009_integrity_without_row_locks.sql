-- Referential integrity without a row lock per reservation (issue 11). The
-- check of 0002/0007 took FOR KEY SHARE on every referenced user, as a
-- foreign key does: one tuple lock, one WAL record and one dirtied users
-- page per inserted reservation, plus a full-page image of that page after
-- each checkpoint. On a hot batch event those locks were most of the
-- trigger's cost. The lock now sits on the rare side: whatever removes a
-- user or an event, or changes its id, first takes SHARE on reservations.
-- SHARE conflicts with the ROW EXCLUSIVE lock that every writer of
-- reservations holds until it commits, so, just as strong as before:
--   * a writer of reservations that is under way when the removal starts
--     makes the removal wait for its commit; the guard then reads with a
--     fresh snapshot and sees its rows (and refuses);
--   * a writer that starts while the removal's transaction runs waits for
--     it; its check then reads with a fresh snapshot and finds the row
--     gone (and refuses).
-- The check and the guards run in READ COMMITTED, as reservd's transactions
-- do; in REPEATABLE READ a guard's snapshot may predate the wait (as
-- before this migration).
-- The lock is taken by statement-level BEFORE triggers, before the
-- statement locks any row: a removal never holds a row that a waiting
-- writer needs while it waits for that writer (no deadlock with reservd's
-- statements, which lock the event row after their table locks).
CREATE OR REPLACE FUNCTION reservd_reservations_refs_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_missing bigint;
BEGIN
    SELECT n.user_id INTO v_missing FROM new_rows n
     WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = n.user_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'reservation refers to user %, which does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT n.event_id INTO v_missing FROM new_rows n
     WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = n.event_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'reservation refers to event %, which does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION reservd_reservations_writers_drained() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE reservations IN SHARE MODE;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_drain_reservation_writers BEFORE DELETE OR UPDATE OF id ON users
    FOR EACH STATEMENT EXECUTE FUNCTION reservd_reservations_writers_drained();
CREATE TRIGGER events_drain_reservation_writers BEFORE DELETE OR UPDATE OF id ON events
    FOR EACH STATEMENT EXECUTE FUNCTION reservd_reservations_writers_drained();

-- TRUNCATE has no DELETE triggers: its guard takes the same lock itself
-- before it looks.
CREATE OR REPLACE FUNCTION reservd_referenced_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        LOCK TABLE reservations IN SHARE MODE;
        IF EXISTS (SELECT 1 FROM reservations) THEN
            RAISE EXCEPTION 'cannot truncate %: reservations refer to it', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF (TG_TABLE_NAME = 'users' AND EXISTS (SELECT 1 FROM reservations r WHERE r.user_id = OLD.id))
       OR (TG_TABLE_NAME = 'events' AND EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = OLD.id))
    THEN
        RAISE EXCEPTION '% % is referenced by reservations', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
