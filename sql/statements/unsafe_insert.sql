INSERT INTO reservations (event_id, user_id) VALUES ($1, $2)
RETURNING id AS reservation_id, floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms,
          NULL::int8 AS expires_at_ms
