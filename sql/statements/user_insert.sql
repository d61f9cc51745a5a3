INSERT INTO users (name, email) VALUES ($1, $2)
RETURNING id, name, email, floor(extract(epoch FROM created_at) * 1000)::int8 AS created_at_ms
