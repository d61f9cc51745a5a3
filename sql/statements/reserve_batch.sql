-- batch: a group of requests ($2 users, $4 quantities, $5 holds, in arrival
-- order) through reservd_reserve (sql/migrations/0003) under one lock of the
-- event row (within $3 ms): one INSERT and one counter update for the
-- group. Each row answers its request as the per-request path would have
-- at its turn. 'conflict': another writer's active reservation for that
-- user committed meanwhile (ON CONFLICT caught it; nothing spent); the
-- caller requeues the group's sold_out answers, so nobody is refused a
-- ticket that is still there.
-- $6, $7 (parallel to $2) and $8: each request's Idempotency-Key record
-- (key hash and fingerprint, NULL without a key) and the seconds to keep
-- it; a granted request's record is written in the group's transaction,
-- its body the 201's (0006). A key that another request recorded
-- meanwhile fails the whole statement (0008: SQLSTATE RSK01, the key's
-- hash as its detail); the caller answers that request from the record
-- and sends the others round again.
WITH g AS MATERIALIZED (
  SELECT * FROM reservd_reserve($1, $2::int8[], $4::int4[], $5::bool[], $3, false)),
req AS (SELECT u.ord::int AS ord, u.user_id, u.quantity, u.hold, u.key_hash, u.fingerprint
        FROM unnest($2::int8[], $4::int4[], $5::bool[], $6::text[], $7::text[])
             WITH ORDINALITY AS u (user_id, quantity, hold, key_hash, fingerprint, ord)),
idem AS (INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location,
                                            expires_at)
         SELECT DISTINCT ON (req.key_hash) req.key_hash, req.fingerprint, 201,
                reservd_reservation_created_json(g.g_reservation_id, $1, req.user_id,
                                                 coalesce(req.quantity, 1),
                                                 coalesce(req.hold, false), g.g_reserved_at,
                                                 g.g_expires_at),
                '/reservations/' || g.g_reservation_id, now() + make_interval(secs => $8::int4)
         FROM g JOIN req ON req.ord = g.g_ord
         WHERE g.g_outcome = 'reserved' AND req.key_hash IS NOT NULL ORDER BY req.key_hash
         ON CONFLICT (key_hash) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= now()
         RETURNING k.key_hash)
SELECT g_ord AS ord, g_outcome AS outcome, g_reservation_id AS reservation_id,
       floor(extract(epoch FROM g_reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM g_expires_at) * 1000)::int8 AS expires_at_ms,
       g_tickets_left AS tickets_left, g_max_per_user AS max_per_user,
       g_holds_expired AS holds_expired
FROM g JOIN req ON req.ord = g.g_ord
WHERE CASE WHEN req.key_hash IS NOT NULL AND g.g_outcome = 'reserved'
                AND NOT EXISTS (SELECT 1 FROM idem WHERE idem.key_hash = req.key_hash)
           THEN reservd_idempotency_key_taken(req.key_hash) ELSE true END
ORDER BY g_ord
