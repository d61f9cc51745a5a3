-- atomic: reservd_reserve_atomic (sql/migrations/) takes the tickets with
-- a conditional UPDATE, then inserts. $4 quantity, $5 hold. $6, $7, $8:
-- the Idempotency-Key record written with the grant (key hash,
-- fingerprint, seconds), NULL without one; its body is the 201's (0006).
-- A key that another request recorded meanwhile fails the statement (0008).
WITH a AS MATERIALIZED (SELECT * FROM reservd_reserve_atomic($1, $2, $4::int4, $5::bool, $3)),
idem AS (INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location,
                                            expires_at)
         SELECT $6::text, $7::text, 201,
                reservd_reservation_created_json(a.reservation_id, $1, $2, $4::int4, $5::bool,
                                                 a.reserved_at, a.expires_at),
                '/reservations/' || a.reservation_id, now() + make_interval(secs => $8::int4)
         FROM a WHERE a.outcome = 'reserved' AND $6::text IS NOT NULL
         ON CONFLICT (key_hash) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= now()
         RETURNING 1)
SELECT outcome, reservation_id,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM expires_at) * 1000)::int8 AS expires_at_ms,
       tickets_left, max_per_user, holds_expired
FROM a
WHERE CASE WHEN $6::text IS NOT NULL AND a.outcome = 'reserved' AND NOT EXISTS (SELECT 1 FROM idem)
           THEN reservd_idempotency_key_taken($6::text) ELSE true END
