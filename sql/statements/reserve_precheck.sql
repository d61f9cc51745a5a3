-- for-update's and batch's committed read for a group of users ($2, with
-- quantities $3, in order): answers what cannot succeed without any lock,
-- 'available' for the rest, and the tickets left (0 while anyone waits;
-- overdue holds do not count). LATERAL ... LIMIT 1 keeps each check an
-- index lookup per user.
WITH ev AS (SELECT e.id, e.max_per_user,
                   CASE WHEN e.waiting_count > 0 THEN 0
                        ELSE e.max_tickets - e.reserved_tickets - e.held_tickets
                             + coalesce((SELECT sum(r.quantity) FROM reservations r
                                          WHERE r.event_id = e.id AND r.status = 'HELD'
                                            AND r.expires_at <= now()), 0)::int4
                   END AS tickets_left
            FROM events e WHERE e.id = $1)
SELECT u.ord::int AS ord,
       CASE WHEN ev.id IS NULL THEN 'event_not_found'
            WHEN k.one IS NULL THEN 'user_not_found'
            WHEN coalesce(u.qty, 1) > ev.max_per_user THEN 'over_limit'
            WHEN h.one IS NOT NULL THEN 'already_reserved'
            WHEN coalesce(u.qty, 1) > ev.tickets_left THEN 'sold_out'
            ELSE 'available' END AS outcome,
       ev.tickets_left AS tickets_left, ev.max_per_user AS max_per_user
FROM unnest($2::int8[], $3::int4[]) WITH ORDINALITY AS u (user_id, qty, ord)
LEFT JOIN ev ON true
LEFT JOIN LATERAL (SELECT 1 AS one FROM users x WHERE x.id = u.user_id LIMIT 1) k ON true
LEFT JOIN LATERAL (SELECT 1 AS one FROM reservations r WHERE r.event_id = $1
                   AND r.user_id = u.user_id
                   AND (r.status = 'RESERVED' OR (r.status = 'HELD' AND r.expires_at > now()))
                   LIMIT 1) h ON true
