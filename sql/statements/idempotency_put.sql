-- Record key $1's answer ($3 status, $4 body, $5 Location) for $6 seconds.
-- An expired record of the same key is replaced; an unexpired one is kept
-- and no row is returned (another request recorded it first).
INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location, expires_at)
VALUES ($1, $2, $3::int4, $4, $5, now() + make_interval(secs => $6::int4))
ON CONFLICT (key_hash) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
    location = EXCLUDED.location, created_at = now(), expires_at = EXCLUDED.expires_at
WHERE k.expires_at <= now()
RETURNING 1 AS stored
