-- A hold whose expires_at has passed is EXPIRED to clients whether or not
-- its expiry has been written yet (sql/migrations/0003).
SELECT id, event_id, user_id, quantity,
       CASE WHEN status = 'HELD' AND expires_at <= now() THEN 'EXPIRED' ELSE status END AS status,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM expires_at) * 1000)::int8 AS expires_at_ms,
       floor(extract(epoch FROM cancelled_at) * 1000)::int8 AS cancelled_at_ms
FROM reservations WHERE id = $1
