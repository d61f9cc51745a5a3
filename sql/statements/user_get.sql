SELECT id, name, email, floor(extract(epoch FROM created_at) * 1000)::int8 AS created_at_ms
FROM users WHERE id = $1
