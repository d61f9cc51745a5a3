-- The purchase flow: quantities, holds that expire, confirmation, capacity
-- changes, and the waiting list's contract (issue 13).
--
-- Tickets out = reserved_tickets (confirmed quantities) + held_tickets
-- (quantities in HELD reservations, expired or not until an expiry is
-- written). A hold whose expires_at has passed never counts for a client:
-- every path that holds the event's row lock first expires the event's
-- overdue holds (reservd_expire_holds), and reads subtract the overdue
-- ones. Times compare with now() (the transaction's start) everywhere.
--
-- Lock order everywhere: the event row, then its reservation rows.
--
-- The waiting list (another migration) plugs in through two things:
--   events.waiting_count: every reserving path reads it under the event's
--     lock; while it is above 0 new reservations are refused sold_out, as
--     if nothing remained;
--   reservd_tickets_returned(event): called by every path that gives
--     tickets back (cancel, expiry inline or by the sweeper, a capacity
--     raise), in the same transaction, after the counters are updated and
--     while the event's row is locked. A no-op here.

ALTER TABLE events
    ADD COLUMN max_per_user integer NOT NULL DEFAULT 1
        CONSTRAINT events_max_per_user_in_range CHECK (max_per_user BETWEEN 1 AND 100),
    ADD COLUMN hold_seconds integer NOT NULL DEFAULT 900
        CONSTRAINT events_hold_seconds_in_range CHECK (hold_seconds BETWEEN 1 AND 86400),
    ADD COLUMN offer_seconds integer NOT NULL DEFAULT 86400
        CONSTRAINT events_offer_seconds_in_range CHECK (offer_seconds BETWEEN 1 AND 604800),
    ADD COLUMN held_tickets integer NOT NULL DEFAULT 0,
    ADD COLUMN waiting_count integer NOT NULL DEFAULT 0
        CONSTRAINT events_waiting_count_not_negative CHECK (waiting_count >= 0);
-- Confirmed plus held never exceed the capacity.
ALTER TABLE events DROP CONSTRAINT events_reserved_tickets_in_range;
ALTER TABLE events ADD CONSTRAINT events_tickets_in_range
    CHECK (reserved_tickets >= 0 AND held_tickets >= 0
           AND reserved_tickets + held_tickets <= max_tickets);

ALTER TABLE reservations
    ADD COLUMN quantity integer NOT NULL DEFAULT 1
        CONSTRAINT reservations_quantity_in_range CHECK (quantity BETWEEN 1 AND 100),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN expired_at timestamptz;
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_known
    CHECK (status IN ('HELD', 'RESERVED', 'CANCELLED', 'EXPIRED'));
-- A hold has its expiry; a confirmed reservation has none; an expired one
-- has both, written no earlier than it was due. (Cancelled keeps whatever
-- it had.) cancelled_at matches CANCELLED as before (0001).
ALTER TABLE reservations ADD CONSTRAINT reservations_expired_at_matches_status
    CHECK ((status = 'EXPIRED') = (expired_at IS NOT NULL));
ALTER TABLE reservations ADD CONSTRAINT reservations_expires_at_matches_status
    CHECK (CASE status WHEN 'HELD' THEN expires_at IS NOT NULL
                       WHEN 'EXPIRED' THEN expires_at IS NOT NULL AND expired_at >= expires_at
                       WHEN 'RESERVED' THEN expires_at IS NULL
                       ELSE true END);

-- One active (held or confirmed) reservation per user and event: the new
-- index first, so that the rule never lapses.
CREATE UNIQUE INDEX reservations_one_active ON reservations (event_id, user_id)
    WHERE status IN ('HELD', 'RESERVED');
DROP INDEX reservations_one_active_per_user;
-- Expiry: an event's overdue holds, and the sweeper's search for them.
CREATE INDEX reservations_held_expiry ON reservations (event_id, expires_at)
    WHERE status = 'HELD';

-- The waiting list's hook: see the top of this file.
CREATE OR REPLACE FUNCTION reservd_tickets_returned(p_event bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
END
$$;

-- Expire up to p_limit (NULL: all) of an event's overdue holds and give
-- their tickets back. The caller holds the event's row lock. Returns how
-- many it expired.
CREATE OR REPLACE FUNCTION reservd_expire_holds(p_event bigint, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
    v_tickets integer;
BEGIN
    -- usually none: skip the UPDATE (and its statement-level triggers)
    IF NOT EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = p_event
                   AND r.status = 'HELD' AND r.expires_at <= now()) THEN
        RETURN 0;
    END IF;
    WITH due AS (SELECT r.id FROM reservations r
                  WHERE r.event_id = p_event AND r.status = 'HELD' AND r.expires_at <= now()
                  ORDER BY r.expires_at LIMIT p_limit),
    exp AS (UPDATE reservations r SET status = 'EXPIRED', expired_at = now()
              FROM due WHERE r.id = due.id AND r.status = 'HELD'
            RETURNING r.quantity)
    SELECT count(*), coalesce(sum(exp.quantity), 0) INTO v_count, v_tickets FROM exp;
    IF v_count > 0 THEN
        UPDATE events SET held_tickets = held_tickets - v_tickets WHERE id = p_event;
        PERFORM reservd_tickets_returned(p_event);
    END IF;
    RETURN v_count;
END
$$;

-- for-update and batch: grant (or refuse) a group of requests for one
-- event, in arrival order, each all or nothing by its quantity, under one
-- lock of the event row (NOWAIT when p_nowait: a pipelined statement behind
-- our own). Each row answers one request (g_ord, 1-based) as if it had run
-- alone at its turn: event_not_found, user_not_found, over_limit (quantity
-- above max_per_user), already_reserved (an active reservation, or one
-- granted earlier in the group), sold_out (fewer tickets left than asked,
-- or anyone waiting), reserved, or conflict (another writer's active
-- reservation committed meanwhile, caught by ON CONFLICT: nothing spent).
-- g_tickets_left: what is left after the row's turn; g_holds_expired (on
-- the first row): overdue holds this call expired.
CREATE OR REPLACE FUNCTION reservd_reserve(p_event bigint, p_users bigint[],
        p_quantities integer[], p_holds boolean[], p_lock_timeout text, p_nowait boolean)
RETURNS TABLE (g_ord integer, g_outcome text, g_reservation_id bigint,
               g_reserved_at timestamptz, g_expires_at timestamptz, g_tickets_left integer,
               g_max_per_user integer, g_holds_expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(cardinality(p_users), 0);
    v_max integer;
    v_reserved integer;
    v_held integer;
    v_waiting integer;
    v_max_per_user integer;
    v_hold_seconds integer;
    v_expired integer := 0;
    v_left integer;
    v_user_ok boolean[];
    v_active boolean[];
    v_prev integer[];    -- the same user's previous request in the group, if any
    v_has boolean[];     -- the user holds a reservation granted up to this request
    v_out text[] := '{}';
    v_left_at integer[] := '{}';
    v_g_users bigint[] := '{}';
    v_g_ords integer[] := '{}';
    v_g_qty integer[] := '{}';
    v_g_hold boolean[] := '{}';
    v_id bigint[];
    v_at timestamptz[];
    v_exp timestamptz[];
    v_i_ord integer[];
    v_i_id bigint[];
    v_i_at timestamptz[];
    v_i_exp timestamptz[];
    q integer;
BEGIN
    -- One statement: the lock budget, the lock, and each user's facts. The
    -- facts read the statement's snapshot, taken before any lock wait (as
    -- the granting statements always did): a reservation committed
    -- meanwhile is caught by ON CONFLICT below ('conflict'). Overdue holds
    -- never count as active, whether or not their expiry is written.
    IF p_nowait THEN
        SELECT x.max_tickets, x.reserved_tickets, x.held_tickets, x.waiting_count, x.max_per_user,
               x.hold_seconds, f.user_ok, f.active, f.prev
          INTO v_max, v_reserved, v_held, v_waiting, v_max_per_user, v_hold_seconds,
               v_user_ok, v_active, v_prev
          FROM events x,
               LATERAL (SELECT array_agg(EXISTS (SELECT 1 FROM users k WHERE k.id = u.id)
                                         ORDER BY u.o) AS user_ok,
                               array_agg(EXISTS (SELECT 1 FROM reservations r
                                                  WHERE r.event_id = p_event AND r.user_id = u.id
                                                    AND (r.status = 'RESERVED'
                                                         OR (r.status = 'HELD'
                                                             AND r.expires_at > now())))
                                         ORDER BY u.o) AS active,
                               array_agg(u.prev ORDER BY u.o) AS prev
                          FROM (SELECT y.id, y.o,
                                       lag(y.o) OVER (PARTITION BY y.id ORDER BY y.o)::integer
                                           AS prev
                                  FROM unnest(p_users) WITH ORDINALITY AS y (id, o)) u) f
         WHERE x.id = p_event AND set_config('lock_timeout', p_lock_timeout, true) IS NOT NULL
           FOR UPDATE OF x NOWAIT;
    ELSE
        SELECT x.max_tickets, x.reserved_tickets, x.held_tickets, x.waiting_count, x.max_per_user,
               x.hold_seconds, f.user_ok, f.active, f.prev
          INTO v_max, v_reserved, v_held, v_waiting, v_max_per_user, v_hold_seconds,
               v_user_ok, v_active, v_prev
          FROM events x,
               LATERAL (SELECT array_agg(EXISTS (SELECT 1 FROM users k WHERE k.id = u.id)
                                         ORDER BY u.o) AS user_ok,
                               array_agg(EXISTS (SELECT 1 FROM reservations r
                                                  WHERE r.event_id = p_event AND r.user_id = u.id
                                                    AND (r.status = 'RESERVED'
                                                         OR (r.status = 'HELD'
                                                             AND r.expires_at > now())))
                                         ORDER BY u.o) AS active,
                               array_agg(u.prev ORDER BY u.o) AS prev
                          FROM (SELECT y.id, y.o,
                                       lag(y.o) OVER (PARTITION BY y.id ORDER BY y.o)::integer
                                           AS prev
                                  FROM unnest(p_users) WITH ORDINALITY AS y (id, o)) u) f
         WHERE x.id = p_event AND set_config('lock_timeout', p_lock_timeout, true) IS NOT NULL
           FOR UPDATE OF x;
    END IF;
    IF v_max IS NULL THEN
        RETURN QUERY SELECT g::integer, 'event_not_found'::text, NULL::bigint,
                            NULL::timestamptz, NULL::timestamptz, NULL::integer,
                            NULL::integer, 0
                       FROM generate_series(1, n) g;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = p_event
               AND r.status = 'HELD' AND r.expires_at <= now()) THEN
        v_expired := reservd_expire_holds(p_event, NULL);
        -- the row as the expiry (and the waiting list) left it
        SELECT x.max_tickets, x.reserved_tickets, x.held_tickets, x.waiting_count
          INTO v_max, v_reserved, v_held, v_waiting FROM events x WHERE x.id = p_event;
    END IF;
    v_left := CASE WHEN v_waiting > 0 THEN 0 ELSE v_max - v_reserved - v_held END;

    v_has := array_fill(false, ARRAY[n]);
    FOR i IN 1 .. n LOOP
        q := coalesce(p_quantities[i], 1);
        v_has[i] := v_prev[i] IS NOT NULL AND v_has[v_prev[i]];
        IF NOT v_user_ok[i] THEN
            v_out[i] := 'user_not_found';
        ELSIF q > v_max_per_user THEN
            v_out[i] := 'over_limit';
        ELSIF v_active[i] OR v_has[i] THEN
            v_out[i] := 'already_reserved';
        ELSIF q > v_left THEN
            v_out[i] := 'sold_out';
        ELSE
            v_out[i] := 'reserved';
            v_left := v_left - q;
            v_has[i] := true;
            v_g_users := v_g_users || p_users[i];
            v_g_ords := v_g_ords || i;
            v_g_qty := v_g_qty || q;
            v_g_hold := v_g_hold || coalesce(p_holds[i], false);
        END IF;
        v_left_at[i] := v_left;
    END LOOP;

    IF cardinality(v_g_users) > 0 THEN
        -- one statement: the rows, and the counters by what was inserted
        WITH ins AS (
            INSERT INTO reservations AS r (event_id, user_id, quantity, status, expires_at)
            SELECT p_event, g.user_id, g.qty, CASE WHEN g.hold THEN 'HELD' ELSE 'RESERVED' END,
                   CASE WHEN g.hold THEN now() + make_interval(secs => v_hold_seconds) END
              FROM unnest(v_g_users, v_g_qty, v_g_hold, v_g_ords) AS g (user_id, qty, hold, ord)
             ORDER BY g.ord
            ON CONFLICT (event_id, user_id) WHERE status IN ('HELD', 'RESERVED') DO NOTHING
            RETURNING r.id, r.user_id, r.quantity, r.status, r.reserved_at, r.expires_at),
        upd AS (
            UPDATE events x
               SET reserved_tickets = x.reserved_tickets
                       + (SELECT coalesce(sum(ins.quantity), 0) FROM ins
                           WHERE ins.status = 'RESERVED'),
                   held_tickets = x.held_tickets
                       + (SELECT coalesce(sum(ins.quantity), 0) FROM ins WHERE ins.status = 'HELD')
             WHERE x.id = p_event AND EXISTS (SELECT 1 FROM ins))
        SELECT array_agg(g.ord), array_agg(ins.id), array_agg(ins.reserved_at),
               array_agg(ins.expires_at)
          INTO v_i_ord, v_i_id, v_i_at, v_i_exp
          FROM ins JOIN unnest(v_g_users, v_g_ords) AS g (user_id, ord) ON g.user_id = ins.user_id;
        v_id := array_fill(NULL::bigint, ARRAY[n]);
        v_at := array_fill(NULL::timestamptz, ARRAY[n]);
        v_exp := array_fill(NULL::timestamptz, ARRAY[n]);
        FOR k IN 1 .. coalesce(cardinality(v_i_ord), 0) LOOP
            v_id[v_i_ord[k]] := v_i_id[k];
            v_at[v_i_ord[k]] := v_i_at[k];
            v_exp[v_i_ord[k]] := v_i_exp[k];
        END LOOP;
    END IF;

    FOR i IN 1 .. n LOOP
        g_ord := i;
        g_outcome := v_out[i];
        g_reservation_id := v_id[i];
        g_reserved_at := v_at[i];
        g_expires_at := v_exp[i];
        IF v_out[i] = 'reserved' AND v_id[i] IS NULL THEN
            g_outcome := 'conflict';
        END IF;
        g_tickets_left := v_left_at[i];
        g_max_per_user := v_max_per_user;
        g_holds_expired := CASE WHEN i = 1 THEN v_expired ELSE 0 END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- atomic: one conditional UPDATE takes the tickets, then the insert; only
-- when it finds too few does it lock the row, expire what is overdue and
-- look again. The unique index turns a duplicate into already_reserved
-- (the counters are given back).
DROP FUNCTION reservd_reserve_atomic(bigint, bigint, text);
CREATE OR REPLACE FUNCTION reservd_reserve_atomic(p_event bigint, p_user bigint,
        p_quantity integer, p_hold boolean, p_lock_timeout text,
        OUT outcome text, OUT reservation_id bigint, OUT reserved_at timestamptz,
        OUT expires_at timestamptz, OUT tickets_left integer, OUT max_per_user integer,
        OUT holds_expired integer)
LANGUAGE plpgsql AS $$
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
    BEGIN
        INSERT INTO reservations AS r (event_id, user_id, quantity, status, expires_at)
        VALUES (p_event, p_user, p_quantity, CASE WHEN p_hold THEN 'HELD' ELSE 'RESERVED' END,
                CASE WHEN p_hold THEN now() + make_interval(secs => v_seconds) END)
        RETURNING r.id, r.reserved_at, r.expires_at INTO reservation_id, reserved_at, expires_at;
    EXCEPTION WHEN unique_violation THEN
        -- the subtransaction is gone; give the tickets back too
        UPDATE events x SET reserved_tickets = x.reserved_tickets - v_res,
                            held_tickets = x.held_tickets - v_held
         WHERE x.id = p_event;
        outcome := 'already_reserved'; RETURN;
    END;
    SELECT x.max_tickets - x.reserved_tickets - x.held_tickets INTO tickets_left
      FROM events x WHERE x.id = p_event;
    outcome := 'reserved';
END
$$;

-- cancel: lock the event row, expire what is overdue, flip a held or
-- confirmed reservation to CANCELLED and give its tickets back. Cancelling
-- one that is no longer active (cancelled, expired) changes nothing.
DROP FUNCTION reservd_cancel(bigint, text);
CREATE OR REPLACE FUNCTION reservd_cancel(p_reservation bigint, p_lock_timeout text,
        OUT outcome text, OUT cancelled_now boolean, OUT was_held boolean,
        OUT holds_expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_event bigint;
    v_status text;
    v_quantity integer;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    cancelled_now := false;
    was_held := false;
    holds_expired := 0;
    SELECT r.event_id INTO v_event FROM reservations r WHERE r.id = p_reservation;
    IF NOT FOUND THEN
        outcome := 'reservation_not_found'; RETURN;
    END IF;
    PERFORM 1 FROM events e WHERE e.id = v_event FOR UPDATE;
    holds_expired := reservd_expire_holds(v_event, NULL);
    SELECT r.status, r.quantity INTO v_status, v_quantity
      FROM reservations r WHERE r.id = p_reservation FOR UPDATE;
    outcome := 'cancelled';
    IF v_status NOT IN ('HELD', 'RESERVED') THEN
        RETURN;
    END IF;
    UPDATE reservations SET status = 'CANCELLED', cancelled_at = now() WHERE id = p_reservation;
    IF v_status = 'HELD' THEN
        UPDATE events SET held_tickets = held_tickets - v_quantity WHERE id = v_event;
    ELSE
        UPDATE events SET reserved_tickets = reserved_tickets - v_quantity WHERE id = v_event;
    END IF;
    PERFORM reservd_tickets_returned(v_event);
    cancelled_now := true;
    was_held := v_status = 'HELD';
END
$$;

-- confirm: lock the event row, expire what is overdue, then make a hold
-- final. Outcomes: confirmed (now, or already: confirmed_now says),
-- hold_expired, reservation_cancelled, reservation_not_found.
CREATE OR REPLACE FUNCTION reservd_confirm(p_reservation bigint, p_lock_timeout text,
        OUT outcome text, OUT confirmed_now boolean, OUT holds_expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_event bigint;
    v_status text;
    v_quantity integer;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    confirmed_now := false;
    holds_expired := 0;
    SELECT r.event_id INTO v_event FROM reservations r WHERE r.id = p_reservation;
    IF NOT FOUND THEN
        outcome := 'reservation_not_found'; RETURN;
    END IF;
    PERFORM 1 FROM events e WHERE e.id = v_event FOR UPDATE;
    holds_expired := reservd_expire_holds(v_event, NULL);
    SELECT r.status, r.quantity INTO v_status, v_quantity
      FROM reservations r WHERE r.id = p_reservation FOR UPDATE;
    IF v_status = 'RESERVED' THEN
        outcome := 'confirmed'; RETURN;
    ELSIF v_status = 'EXPIRED' THEN
        outcome := 'hold_expired'; RETURN;
    ELSIF v_status = 'CANCELLED' THEN
        outcome := 'reservation_cancelled'; RETURN;
    END IF;
    UPDATE reservations SET status = 'RESERVED', expires_at = NULL WHERE id = p_reservation;
    UPDATE events SET held_tickets = held_tickets - v_quantity,
                      reserved_tickets = reserved_tickets + v_quantity
     WHERE id = v_event;
    outcome := 'confirmed';
    confirmed_now := true;
END
$$;

-- PATCH /events/{id}: lock the row, expire what is overdue, refuse a
-- capacity below what is out, change what was given (NULL: unchanged).
-- A raised capacity gives tickets back. Outcomes: updated,
-- event_not_found, capacity_below_reserved (with what is out in
-- tickets_out).
CREATE OR REPLACE FUNCTION reservd_event_update(p_event bigint, p_name text,
        p_date timestamptz, p_location text, p_max integer, p_max_per_user integer,
        p_hold_seconds integer, p_offer_seconds integer, p_lock_timeout text,
        OUT outcome text, OUT tickets_out integer, OUT holds_expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    e events%ROWTYPE;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    holds_expired := 0;
    PERFORM 1 FROM events x WHERE x.id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'event_not_found'; RETURN;
    END IF;
    holds_expired := reservd_expire_holds(p_event, NULL);
    SELECT * INTO e FROM events x WHERE x.id = p_event;
    tickets_out := e.reserved_tickets + e.held_tickets;
    IF p_max IS NOT NULL AND p_max < tickets_out THEN
        outcome := 'capacity_below_reserved'; RETURN;
    END IF;
    UPDATE events x SET name = coalesce(p_name, x.name), date = coalesce(p_date, x.date),
                        location = coalesce(p_location, x.location),
                        max_tickets = coalesce(p_max, x.max_tickets),
                        max_per_user = coalesce(p_max_per_user, x.max_per_user),
                        hold_seconds = coalesce(p_hold_seconds, x.hold_seconds),
                        offer_seconds = coalesce(p_offer_seconds, x.offer_seconds)
     WHERE x.id = p_event;
    IF p_max IS NOT NULL AND p_max > e.max_tickets THEN
        PERFORM reservd_tickets_returned(p_event);
    END IF;
    outcome := 'updated';
END
$$;

-- The sweeper: persist the expiry of overdue holds on up to p_events
-- events, up to p_holds holds each, skipping events whose row another
-- transaction holds (it expires them itself, or the next sweep will), so
-- that several instances never expire the same hold and never wait on one
-- another. Returns the holds expired and whether more may be due.
CREATE OR REPLACE FUNCTION reservd_sweep(p_events integer, p_holds integer,
        OUT expired integer, OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_event bigint;
    v_count integer;
    v_seen integer := 0;
BEGIN
    -- a reservation row someone else holds: give up rather than wait long
    PERFORM set_config('lock_timeout', '1000', true);
    expired := 0;
    more := false;
    FOR v_event IN
        SELECT e.id FROM events e
         WHERE e.id IN (SELECT r.event_id FROM reservations r
                         WHERE r.status = 'HELD' AND r.expires_at <= now())
         ORDER BY e.id LIMIT p_events
           FOR UPDATE OF e SKIP LOCKED
    LOOP
        v_seen := v_seen + 1;
        v_count := reservd_expire_holds(v_event, p_holds);
        expired := expired + v_count;
        more := more OR v_count >= p_holds;
    END LOOP;
    more := more OR v_seen >= p_events;
END
$$;
