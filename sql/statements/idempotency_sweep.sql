-- Delete at most $1 expired records, oldest first (a bounded batch: the
-- sweeper runs again while it finds a full one).
WITH gone AS (DELETE FROM idempotency_keys WHERE key_hash IN
                (SELECT key_hash FROM idempotency_keys WHERE expires_at <= now()
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
              RETURNING 1)
SELECT count(*)::int4 AS deleted FROM gone
