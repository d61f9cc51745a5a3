-- for-update's committed read for a group of users ($2, in order): answers
-- what cannot succeed without any lock, 'available' for the rest, and the
-- tickets left. LATERAL ... LIMIT 1 keeps each check an index lookup per
-- user (see reserve_batch.sql).
SELECT u.ord::int AS ord,
       CASE WHEN e.id IS NULL THEN 'event_not_found'
            WHEN k.one IS NULL THEN 'user_not_found'
            WHEN h.one IS NOT NULL THEN 'already_reserved'
            WHEN e.reserved_tickets >= e.max_tickets THEN 'sold_out'
            ELSE 'available' END AS outcome,
       e.max_tickets - e.reserved_tickets AS tickets_left
FROM unnest($2::int8[]) WITH ORDINALITY AS u (user_id, ord)
LEFT JOIN events e ON e.id = $1
LEFT JOIN LATERAL (SELECT 1 AS one FROM users x WHERE x.id = u.user_id LIMIT 1) k ON true
LEFT JOIN LATERAL (SELECT 1 AS one FROM reservations r WHERE r.event_id = $1
                   AND r.user_id = u.user_id AND r.status = 'RESERVED' LIMIT 1) h ON true
