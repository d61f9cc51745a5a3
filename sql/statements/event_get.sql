-- An event as clients see it: held_tickets leaves out overdue holds
-- whether or not their expiry has been written yet (sql/migrations/0003).
SELECT e.id, e.name, floor(extract(epoch FROM e.date) * 1000)::int8 AS date_ms, e.location,
       e.max_tickets, e.reserved_tickets,
       e.held_tickets - coalesce((SELECT sum(r.quantity) FROM reservations r
                                   WHERE r.event_id = e.id AND r.status = 'HELD'
                                     AND r.expires_at <= now()), 0)::int4 AS held_tickets,
       e.max_per_user, e.hold_seconds, e.offer_seconds, e.waiting_count AS waitlist_length,
       floor(extract(epoch FROM e.created_at) * 1000)::int8 AS created_at_ms
FROM events e WHERE e.id = $1
