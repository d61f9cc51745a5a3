-- As reservation_list.sql, by the user's index.
SELECT id, event_id, user_id, quantity,
       CASE WHEN status = 'HELD' AND expires_at <= now() THEN 'EXPIRED' ELSE status END AS status,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM expires_at) * 1000)::int8 AS expires_at_ms,
       floor(extract(epoch FROM cancelled_at) * 1000)::int8 AS cancelled_at_ms
FROM reservations WHERE user_id = $3 AND id > $1
AND ($2::int8 IS NULL OR event_id = $2) AND ($4::text IS NULL OR CASE WHEN status = 'HELD' AND expires_at <= now() THEN 'EXPIRED' ELSE status END = $4)
ORDER BY id LIMIT $5
