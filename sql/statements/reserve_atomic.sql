-- atomic: reservd_reserve_atomic (sql/migrations/) takes the ticket with a
-- conditional UPDATE, then inserts. $4, $5, $6: the Idempotency-Key record
-- written with the grant (key hash, fingerprint, seconds), NULL without one.
WITH a AS MATERIALIZED (SELECT * FROM reservd_reserve_atomic($1, $2, $3)),
idem AS (INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location,
                                            expires_at)
         SELECT $4::text, $5::text, 201,
                reservd_reservation_created_json(a.reservation_id, $1, $2, a.reserved_at),
                '/reservations/' || a.reservation_id, now() + make_interval(secs => $6::int4)
         FROM a WHERE a.outcome = 'reserved' AND $4::text IS NOT NULL
         ON CONFLICT (key_hash) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= now())
SELECT outcome, reservation_id,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms
FROM a
