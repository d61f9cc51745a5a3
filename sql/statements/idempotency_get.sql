-- The unexpired record of key $1 (its scope and key, hashed).
SELECT fingerprint, status, body, location FROM idempotency_keys
WHERE key_hash = $1 AND expires_at > now()
