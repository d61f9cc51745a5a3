-- The waiting list (issue 13): users join a sold-out event's list; whenever
-- tickets return (a cancel, an expiry inline or by the sweeper, a capacity
-- raise), the waiting entries are offered them first, in position order,
-- each one whose quantity fits: a HELD reservation for offer_seconds, the
-- entry OFFERED. Confirming the offer makes the entry FULFILLED; an offer
-- that expires or is cancelled makes it EXPIRED, and its tickets go to the
-- next entry (the path that gave them back calls reservd_tickets_returned).
--
-- It plugs into 0003 through events.waiting_count (WAITING entries; every
-- reserving path refuses sold_out while it is above 0) and
-- reservd_tickets_returned, redefined here. Everything below runs with the
-- event's row locked, the lock order of 0003 (the event row, then its
-- reservation and waiting-list rows).

CREATE TABLE waitlist (
    id             bigserial   PRIMARY KEY,
    event_id       bigint      NOT NULL REFERENCES events (id),
    user_id        bigint      NOT NULL REFERENCES users (id),
    quantity       integer     NOT NULL
        CONSTRAINT waitlist_quantity_in_range CHECK (quantity BETWEEN 1 AND 100),
    status         text        NOT NULL DEFAULT 'WAITING'
        CONSTRAINT waitlist_status_known
            CHECK (status IN ('WAITING', 'OFFERED', 'FULFILLED', 'EXPIRED', 'LEFT')),
    position       integer     NOT NULL CONSTRAINT waitlist_position_positive CHECK (position >= 1),
    reservation_id bigint      REFERENCES reservations (id),
    joined_at      timestamptz NOT NULL DEFAULT now(),
    offered_at     timestamptz,
    fulfilled_at   timestamptz,
    expired_at     timestamptz,
    left_at        timestamptz,
    -- An offer is a reservation and the moment it was made; a waiting
    -- entry has neither, an offered, fulfilled or expired one both; one
    -- that left has both or neither (it left while offered, or waiting).
    CONSTRAINT waitlist_offer_matches_status CHECK (
        (reservation_id IS NULL) = (offered_at IS NULL)
        AND CASE status WHEN 'WAITING' THEN reservation_id IS NULL
                        WHEN 'LEFT' THEN true
                        ELSE reservation_id IS NOT NULL END),
    CONSTRAINT waitlist_fulfilled_at_matches_status
        CHECK ((status = 'FULFILLED') = (fulfilled_at IS NOT NULL)),
    CONSTRAINT waitlist_expired_at_matches_status
        CHECK ((status = 'EXPIRED') = (expired_at IS NOT NULL)),
    CONSTRAINT waitlist_left_at_matches_status
        CHECK ((status = 'LEFT') = (left_at IS NOT NULL))
);
-- One active (waiting or offered) entry per user and event.
CREATE UNIQUE INDEX waitlist_one_active ON waitlist (event_id, user_id)
    WHERE status IN ('WAITING', 'OFFERED');
-- The line, in order; positions are never reused.
CREATE UNIQUE INDEX waitlist_event_position ON waitlist (event_id, position);
-- An offer's entry, from its reservation (the trigger below).
CREATE INDEX waitlist_offered ON waitlist (reservation_id) WHERE status = 'OFFERED';

-- What the waiting list did, per event, for /metrics (summed over events):
-- kept in the transactions that do it, under the event's lock.
ALTER TABLE events
    ADD COLUMN waitlist_offered bigint NOT NULL DEFAULT 0,
    ADD COLUMN waitlist_fulfilled bigint NOT NULL DEFAULT 0,
    ADD COLUMN waitlist_expired bigint NOT NULL DEFAULT 0;

-- Offer the event's free tickets to its WAITING entries, in position
-- order, each one whose quantity fits (a smaller one behind a larger one
-- that does not fit is served). The caller holds the event's row lock and
-- has updated the counters. An entry whose user already holds an active
-- reservation for the event (only another writer can make one while the
-- user waits) is no longer waiting: it becomes LEFT.
CREATE OR REPLACE FUNCTION reservd_tickets_returned(p_event bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e events%ROWTYPE;
    w waitlist%ROWTYPE;
    v_free integer;
    v_reservation bigint;
    v_offered integer := 0;
    v_tickets integer := 0;
    v_gone integer := 0;
BEGIN
    SELECT * INTO e FROM events x WHERE x.id = p_event;
    v_free := e.max_tickets - e.reserved_tickets - e.held_tickets;
    IF e.waiting_count = 0 OR v_free <= 0 THEN
        RETURN;
    END IF;
    FOR w IN SELECT * FROM waitlist x
              WHERE x.event_id = p_event AND x.status = 'WAITING' AND x.quantity <= v_free
              ORDER BY x.position
    LOOP
        CONTINUE WHEN w.quantity > v_free;
        INSERT INTO reservations AS r (event_id, user_id, quantity, status, expires_at)
        VALUES (p_event, w.user_id, w.quantity, 'HELD',
                now() + make_interval(secs => e.offer_seconds))
        ON CONFLICT (event_id, user_id) WHERE status IN ('HELD', 'RESERVED') DO NOTHING
        RETURNING r.id INTO v_reservation;
        IF v_reservation IS NULL THEN
            UPDATE waitlist SET status = 'LEFT', left_at = now() WHERE id = w.id;
            v_gone := v_gone + 1;
        ELSE
            UPDATE waitlist SET status = 'OFFERED', reservation_id = v_reservation,
                                offered_at = now()
             WHERE id = w.id;
            v_offered := v_offered + 1;
            v_tickets := v_tickets + w.quantity;
            v_free := v_free - w.quantity;
        END IF;
        EXIT WHEN v_free = 0;
    END LOOP;
    IF v_offered + v_gone > 0 THEN
        UPDATE events x SET held_tickets = x.held_tickets + v_tickets,
                            waiting_count = x.waiting_count - v_offered - v_gone,
                            waitlist_offered = x.waitlist_offered + v_offered
         WHERE x.id = p_event;
    END IF;
END
$$;

-- An offer ends when its hold does: confirmed (RESERVED) makes the entry
-- FULFILLED; expired or cancelled makes it EXPIRED. A trigger, so that
-- every path that moves a hold (reservd_confirm, reservd_cancel,
-- reservd_expire_holds: inline and the sweeper; and any other writer)
-- keeps the entry right without knowing about the list. Statement-level
-- with transition tables, as 0002's checks: one join per statement, so a
-- sweep of 1,000 holds costs one query. Every path that changes a
-- reservation's status holds its event's row lock, so updating the
-- event's counters here keeps the lock order.
CREATE OR REPLACE FUNCTION reservd_waitlist_offer_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH ended AS (
        SELECT n.id, n.status = 'RESERVED' AS confirmed
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE o.status = 'HELD' AND n.status <> 'HELD'),
    moved AS (
        UPDATE waitlist w
           SET status = CASE WHEN ended.confirmed THEN 'FULFILLED' ELSE 'EXPIRED' END,
               fulfilled_at = CASE WHEN ended.confirmed THEN now() END,
               expired_at = CASE WHEN NOT ended.confirmed THEN now() END
          FROM ended
         WHERE w.reservation_id = ended.id AND w.status = 'OFFERED'
        RETURNING w.event_id, ended.confirmed)
    UPDATE events e
       SET waitlist_fulfilled = e.waitlist_fulfilled + m.fulfilled,
           waitlist_expired = e.waitlist_expired + m.expired
      FROM (SELECT moved.event_id, count(*) FILTER (WHERE moved.confirmed) AS fulfilled,
                   count(*) FILTER (WHERE NOT moved.confirmed) AS expired
              FROM moved GROUP BY moved.event_id) m
     WHERE e.id = m.event_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER reservations_waitlist_offer_ended AFTER UPDATE ON reservations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION reservd_waitlist_offer_ended();

-- An entry as clients see it: an offer whose hold is past its expires_at
-- is EXPIRED whether or not the expiry is written yet (as reads of holds
-- in 0003). plpgsql and volatile, so never inlined: called after
-- reservd_waitlist_join or _leave in one statement, it runs with a fresh
-- snapshot and sees what they did.
CREATE OR REPLACE FUNCTION reservd_waitlist_entry(p_entry bigint)
RETURNS TABLE (id bigint, event_id bigint, user_id bigint, quantity integer, status text,
               "position" integer, reservation_id bigint, joined_at_ms bigint,
               offer_expires_at_ms bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY
    SELECT w.id, w.event_id, w.user_id, w.quantity,
           CASE WHEN w.status = 'OFFERED' AND r.expires_at <= now() THEN 'EXPIRED'
                ELSE w.status END,
           w.position, w.reservation_id,
           floor(extract(epoch FROM w.joined_at) * 1000)::int8,
           CASE WHEN w.status = 'OFFERED'
                THEN floor(extract(epoch FROM r.expires_at) * 1000)::int8 END
      FROM waitlist w LEFT JOIN reservations r ON r.id = w.reservation_id
     WHERE w.id = p_entry;
END
$$;

-- POST /events/{id}/waitlist: lock the event, expire what is overdue, then
-- decide, in this order: event_not_found, user_not_found, over_limit
-- (quantity above max_per_user), already_reserved (an active reservation),
-- already_waiting (an active entry), tickets_available (nobody waits and
-- at least p_quantity tickets remain: reserve them instead), or joined.
-- A new entry is offered tickets at once if free ones fit it (those the
-- entries ahead of it were too large for). tickets_left: what a new
-- reservation would find (0 while anyone waits).
CREATE OR REPLACE FUNCTION reservd_waitlist_join(p_event bigint, p_user bigint,
        p_quantity integer, p_lock_timeout text,
        OUT outcome text, OUT entry_id bigint, OUT tickets_left integer,
        OUT max_per_user integer, OUT holds_expired integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e events%ROWTYPE;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    holds_expired := 0;
    PERFORM 1 FROM events x WHERE x.id = p_event FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'event_not_found'; RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p_user) THEN
        outcome := 'user_not_found'; RETURN;
    END IF;
    holds_expired := reservd_expire_holds(p_event, NULL);
    SELECT * INTO e FROM events x WHERE x.id = p_event;
    max_per_user := e.max_per_user;
    tickets_left := CASE WHEN e.waiting_count > 0 THEN 0
                         ELSE e.max_tickets - e.reserved_tickets - e.held_tickets END;
    IF p_quantity > e.max_per_user THEN
        outcome := 'over_limit'; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = p_event AND r.user_id = p_user
               AND r.status IN ('HELD', 'RESERVED')) THEN
        outcome := 'already_reserved'; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM waitlist w WHERE w.event_id = p_event AND w.user_id = p_user
               AND w.status IN ('WAITING', 'OFFERED')) THEN
        outcome := 'already_waiting'; RETURN;
    END IF;
    IF tickets_left >= p_quantity THEN
        outcome := 'tickets_available'; RETURN;
    END IF;
    INSERT INTO waitlist AS w (event_id, user_id, quantity, position)
    VALUES (p_event, p_user, p_quantity,
            (SELECT coalesce(max(x.position), 0) + 1 FROM waitlist x WHERE x.event_id = p_event))
    RETURNING w.id INTO entry_id;
    UPDATE events x SET waiting_count = x.waiting_count + 1 WHERE x.id = p_event;
    PERFORM reservd_tickets_returned(p_event);
    outcome := 'joined';
END
$$;

-- DELETE /waitlist/{id}: leave. A waiting entry becomes LEFT; an offered
-- one too, and its offer (the HELD reservation) is cancelled and its
-- tickets go to the next entry. An entry that has ended (fulfilled,
-- expired, left) is left as it is: leaving is idempotent, and a fulfilled
-- entry's reservation is cancelled with DELETE /reservations/{id}, not
-- here. Outcomes: left (left_now says whether this call did it),
-- waitlist_entry_not_found.
CREATE OR REPLACE FUNCTION reservd_waitlist_leave(p_entry bigint, p_lock_timeout text,
        OUT outcome text, OUT left_now boolean, OUT offer_cancelled boolean,
        OUT holds_expired integer, OUT entry_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w waitlist%ROWTYPE;
    v_quantity integer;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    left_now := false;
    offer_cancelled := false;
    holds_expired := 0;
    SELECT * INTO w FROM waitlist x WHERE x.id = p_entry;
    IF NOT FOUND THEN
        outcome := 'waitlist_entry_not_found'; RETURN;
    END IF;
    entry_id := p_entry;
    PERFORM 1 FROM events e WHERE e.id = w.event_id FOR UPDATE;
    holds_expired := reservd_expire_holds(w.event_id, NULL); -- an overdue offer ends EXPIRED
    SELECT * INTO w FROM waitlist x WHERE x.id = p_entry FOR UPDATE;
    outcome := 'left';
    IF w.status NOT IN ('WAITING', 'OFFERED') THEN
        RETURN;
    END IF;
    -- LEFT first, so that the offer's cancellation below does not make it EXPIRED
    UPDATE waitlist SET status = 'LEFT', left_at = now() WHERE id = p_entry;
    left_now := true;
    IF w.status = 'WAITING' THEN
        UPDATE events SET waiting_count = waiting_count - 1 WHERE id = w.event_id;
        RETURN;
    END IF;
    UPDATE reservations r SET status = 'CANCELLED', cancelled_at = now()
     WHERE r.id = w.reservation_id AND r.status = 'HELD'
    RETURNING r.quantity INTO v_quantity;
    IF v_quantity IS NOT NULL THEN
        UPDATE events SET held_tickets = held_tickets - v_quantity WHERE id = w.event_id;
        offer_cancelled := true;
        PERFORM reservd_tickets_returned(w.event_id);
    END IF;
END
$$;
