-- atomic: a user's own overdue hold no longer blocks their new reservation
-- (issue 13). A hold whose expires_at has passed never counts, whether or
-- not its expiry is written (0003). atomic's quick path takes the tickets
-- with its conditional UPDATE and then inserts; when the user's overdue
-- hold is still HELD (no sweeper yet, nobody else took the event's row
-- lock since it fell due), the unique index of active reservations
-- (reservations_one_active) refused the insert and the user got
-- already_reserved, where for-update and batch expire first and grant.
--
-- Now a unique violation looks at the row it met: if this user's active
-- row for the event is an overdue hold, expire the event's overdue holds
-- (reservd_expire_holds: the counters, the waiting list's offers, as on
-- every other path; the UPDATE has held the event's row since it took the
-- tickets, so no new lock wait and the budget set at the start still
-- applies), decide again as the slow path does (anyone waiting or too few
-- left: sold_out) and insert once more. Without a clash nothing changes:
-- the look happens only in the exception handler.
CREATE OR REPLACE FUNCTION reservd_reserve_atomic(p_event bigint, p_user bigint,
        p_quantity integer, p_hold boolean, p_lock_timeout text,
        OUT outcome text, OUT reservation_id bigint, OUT reserved_at timestamptz,
        OUT expires_at timestamptz, OUT tickets_left integer, OUT max_per_user integer,
        OUT holds_expired integer)
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    e events%ROWTYPE;
    v_res integer := CASE WHEN p_hold THEN 0 ELSE p_quantity END;
    v_held integer := CASE WHEN p_hold THEN p_quantity ELSE 0 END;
    v_seconds integer;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    holds_expired := 0;
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_user) THEN
        IF NOT EXISTS (SELECT 1 FROM events x WHERE x.id = p_event) THEN
            outcome := 'event_not_found'; RETURN;
        END IF;
        outcome := 'user_not_found'; RETURN;
    END IF;
    UPDATE events x SET reserved_tickets = x.reserved_tickets + v_res,
                        held_tickets = x.held_tickets + v_held
     WHERE x.id = p_event AND x.waiting_count = 0 AND x.max_per_user >= p_quantity
       AND x.max_tickets - x.reserved_tickets - x.held_tickets >= p_quantity
    RETURNING x.hold_seconds, x.max_per_user INTO v_seconds, max_per_user;
    IF NOT FOUND THEN
        -- Nothing overdue: the refusal stands as the UPDATE saw it, decided
        -- from a plain read, so that a sold-out event's requests do not
        -- queue on its row lock. Else lock, expire, and look again.
        IF EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = p_event
                   AND r.status = 'HELD' AND r.expires_at <= now()) THEN
            SELECT * INTO e FROM events x WHERE x.id = p_event FOR UPDATE;
            IF FOUND THEN
                holds_expired := reservd_expire_holds(p_event, NULL);
            END IF;
        END IF;
        SELECT * INTO e FROM events x WHERE x.id = p_event;
        IF NOT FOUND THEN
            outcome := 'event_not_found'; RETURN;
        END IF;
        max_per_user := e.max_per_user;
        tickets_left := CASE WHEN e.waiting_count > 0 THEN 0
                             ELSE e.max_tickets - e.reserved_tickets - e.held_tickets END;
        IF p_quantity > e.max_per_user THEN
            outcome := 'over_limit'; RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = p_event
                   AND r.user_id = p_user AND r.status IN ('HELD', 'RESERVED')) THEN
            outcome := 'already_reserved'; RETURN;
        END IF;
        IF tickets_left < p_quantity THEN
            outcome := 'sold_out'; RETURN;
        END IF;
        -- conditional again: without the lock, others may have taken them
        UPDATE events x SET reserved_tickets = x.reserved_tickets + v_res,
                            held_tickets = x.held_tickets + v_held
         WHERE x.id = p_event AND x.waiting_count = 0
           AND x.max_tickets - x.reserved_tickets - x.held_tickets >= p_quantity;
        IF NOT FOUND THEN
            SELECT CASE WHEN x.waiting_count > 0 THEN 0
                        ELSE x.max_tickets - x.reserved_tickets - x.held_tickets END
              INTO tickets_left FROM events x WHERE x.id = p_event;
            outcome := 'sold_out'; RETURN;
        END IF;
        v_seconds := e.hold_seconds;
    END IF;
    -- The tickets are taken and the event's row is ours (the UPDATE) until
    -- the transaction ends. At most two tries: the second only after this
    -- user's overdue hold was expired.
    FOR v_try IN 1 .. 2 LOOP
        BEGIN
            INSERT INTO reservations AS r (event_id, user_id, quantity, status, expires_at)
            VALUES (p_event, p_user, p_quantity,
                    CASE WHEN p_hold THEN 'HELD' ELSE 'RESERVED' END,
                    CASE WHEN p_hold THEN now() + make_interval(secs => v_seconds) END)
            RETURNING r.id, r.reserved_at, r.expires_at
                 INTO reservation_id, reserved_at, expires_at;
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            -- the subtransaction is gone; give the tickets back too
            UPDATE events x SET reserved_tickets = x.reserved_tickets - v_res,
                                held_tickets = x.held_tickets - v_held
             WHERE x.id = p_event;
            IF v_try = 2 OR NOT EXISTS (SELECT 1 FROM reservations r
                                         WHERE r.event_id = p_event AND r.user_id = p_user
                                           AND r.status = 'HELD' AND r.expires_at <= now()) THEN
                outcome := 'already_reserved'; RETURN;
            END IF;
        END;
        -- the clash was this user's overdue hold: expire, then decide again
        holds_expired := holds_expired + reservd_expire_holds(p_event, NULL);
        UPDATE events x SET reserved_tickets = x.reserved_tickets + v_res,
                            held_tickets = x.held_tickets + v_held
         WHERE x.id = p_event AND x.waiting_count = 0
           AND x.max_tickets - x.reserved_tickets - x.held_tickets >= p_quantity;
        IF NOT FOUND THEN
            SELECT CASE WHEN x.waiting_count > 0 THEN 0
                        ELSE x.max_tickets - x.reserved_tickets - x.held_tickets END
              INTO tickets_left FROM events x WHERE x.id = p_event;
            outcome := 'sold_out'; RETURN;
        END IF;
    END LOOP;
    SELECT x.max_tickets - x.reserved_tickets - x.held_tickets INTO tickets_left
      FROM events x WHERE x.id = p_event;
    outcome := 'reserved';
END
$$;
