-- Sign-up with its token in one statement, so the user never exists without
-- the token its 201 carried: $1 the id (from user_next_id.sql: the token
-- names its user), $2 name, $3 email, $4 the token's SHA-256 (hex).
WITH u AS (INSERT INTO users (id, name, email) VALUES ($1, $2, $3)
           RETURNING id, name, email, created_at),
t AS (INSERT INTO user_tokens (user_id, token_sha256) SELECT u.id, $4 FROM u)
SELECT id, name, email, floor(extract(epoch FROM created_at) * 1000)::int8 AS created_at_ms FROM u
