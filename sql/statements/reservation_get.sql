SELECT id, event_id, user_id, status, floor(extract(epoch FROM reserved_at) * 1000)::int8
       AS reserved_at_ms, floor(extract(epoch FROM cancelled_at) * 1000)::int8 AS cancelled_at_ms
FROM reservations WHERE id = $1
