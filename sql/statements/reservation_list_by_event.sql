-- As reservation_list.sql, by the event's index.
SELECT id, event_id, user_id, status, floor(extract(epoch FROM reserved_at) * 1000)::int8
       AS reserved_at_ms, floor(extract(epoch FROM cancelled_at) * 1000)::int8 AS cancelled_at_ms
FROM reservations WHERE event_id = $2 AND id > $1
AND ($3::int8 IS NULL OR user_id = $3) AND ($4::text IS NULL OR status = $4)
ORDER BY id LIMIT $5
