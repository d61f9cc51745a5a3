-- After a connection died mid-commit: which of a group's users ($2) hold an
-- active (held or confirmed) reservation for the event now, and what.
SELECT u.ord::int AS ord, r.id AS reservation_id,
       floor(extract(epoch FROM r.reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM r.expires_at) * 1000)::int8 AS expires_at_ms,
       r.quantity AS quantity
FROM unnest($2::int8[]) WITH ORDINALITY AS u (user_id, ord)
JOIN LATERAL (SELECT x.id, x.reserved_at, x.expires_at, x.quantity FROM reservations x
              WHERE x.event_id = $1 AND x.user_id = u.user_id
              AND x.status IN ('HELD', 'RESERVED') LIMIT 1) r ON true
