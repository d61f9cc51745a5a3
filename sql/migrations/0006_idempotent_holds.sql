-- Access control (0004) meets the purchase flow (0003, 0005): the body a
-- granting statement keeps in a reservation's Idempotency-Key record is
-- the live 201's, which now carries quantity, status and expiresAt
-- (src/api/reservations.c, reservation_object). It replaces 0004's
-- builder, which knew only final single tickets.
DROP FUNCTION reservd_reservation_created_json(bigint, bigint, bigint, timestamptz);

-- RFC 3339 in UTC with milliseconds, as src/core/timefmt.c writes it
-- (truncated, as the statements' floor(epoch * 1000) is); NULL stays NULL.
CREATE FUNCTION reservd_json_time(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A fresh grant: held (expires at p_expires_at) or final.
CREATE FUNCTION reservd_reservation_created_json(p_id bigint, p_event bigint, p_user bigint,
        p_quantity integer, p_held boolean, p_reserved_at timestamptz,
        p_expires_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', p_id, 'eventId', p_event, 'userId', p_user,
                             'quantity', p_quantity,
                             'status', CASE WHEN p_held THEN 'HELD' ELSE 'RESERVED' END,
                             'reservedAt', reservd_json_time(p_reserved_at),
                             'expiresAt', CASE WHEN p_held THEN reservd_json_time(p_expires_at) END,
                             'cancelledAt', NULL, 'expiredAt', NULL)::text
$$;
