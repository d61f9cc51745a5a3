-- for-update: one request through reservd_reserve (sql/migrations/0003):
-- lock the event row (within $3 ms; NOWAIT when $6, for a statement
-- pipelined behind our own), expire its overdue holds, check, insert,
-- count. $4 is the quantity, $5 whether it is a hold.
-- $7, $8, $9: the Idempotency-Key record written with the grant, in this
-- statement's transaction (key hash, fingerprint, seconds to keep it), all
-- NULL without a key; its body is the 201's (0006). A key that another
-- request recorded meanwhile fails the statement (0008: SQLSTATE RSK01), so
-- that its grant does not commit.
WITH g AS MATERIALIZED (
  SELECT * FROM reservd_reserve($1, ARRAY[$2::int8], ARRAY[$4::int4], ARRAY[$5::bool], $3,
                                $6::bool)),
idem AS (INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location,
                                            expires_at)
         SELECT $7::text, $8::text, 201,
                reservd_reservation_created_json(g.g_reservation_id, $1, $2, $4::int4, $5::bool,
                                                 g.g_reserved_at, g.g_expires_at),
                '/reservations/' || g.g_reservation_id, now() + make_interval(secs => $9::int4)
         FROM g WHERE g.g_outcome = 'reserved' AND $7::text IS NOT NULL
         ON CONFLICT (key_hash) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= now()
         RETURNING 1)
SELECT g_outcome AS outcome, g_reservation_id AS reservation_id,
       floor(extract(epoch FROM g_reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM g_expires_at) * 1000)::int8 AS expires_at_ms,
       g_tickets_left AS tickets_left, g_max_per_user AS max_per_user,
       g_holds_expired AS holds_expired
FROM g
WHERE CASE WHEN $7::text IS NOT NULL AND g.g_outcome = 'reserved' AND NOT EXISTS (SELECT 1 FROM idem)
           THEN reservd_idempotency_key_taken($7::text) ELSE true END
