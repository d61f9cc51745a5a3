-- Access control and idempotency keys (issue 14).

-- A user's API token: only its SHA-256 (hex) is kept; the token itself is
-- shown once, in the answer that made it. One per user: a new one replaces
-- the old (POST /users/{id}/token). No foreign key, as elsewhere since 0002:
-- both statements that write here take the user from the users table itself.
CREATE TABLE user_tokens (
    user_id      bigint PRIMARY KEY,
    token_sha256 text NOT NULL CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Idempotency-Key records. key_hash is the SHA-256 (hex) of the key's scope
-- (principal, method, path template) and the key; fingerprint the SHA-256
-- of the request (method, path, body). Only final answers are kept (2xx and
-- 4xx: a 5xx may be retried). A reservation's or a cancellation's record is
-- written in the same transaction as the effect.
CREATE TABLE idempotency_keys (
    key_hash    text PRIMARY KEY CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    status      integer NOT NULL CHECK (status BETWEEN 200 AND 499),
    body        text NOT NULL,
    location    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_expiry_after_creation CHECK (expires_at > created_at)
);
-- The sweeper deletes the oldest expired records first, in bounded batches.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- The body of a granted reservation's 201, as src/api/reservations.c writes
-- it, for the record a granting statement writes in its own transaction
-- (reserve_for_update.sql, reserve_batch.sql, reserve_atomic.sql).
CREATE FUNCTION reservd_reservation_created_json(p_id bigint, p_event bigint, p_user bigint,
                                                 p_reserved_at timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', p_id, 'eventId', p_event, 'userId', p_user,
                             'status', 'RESERVED',
                             'reservedAt', to_char(p_reserved_at AT TIME ZONE 'UTC',
                                                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                             'cancelledAt', NULL)::text
$$;
