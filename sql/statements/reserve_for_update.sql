-- for-update: one request, one statement. A fast path of plain CTEs grants
-- what it can decide exactly; everything else goes to reservd_reserve
-- (sql/migrations/0003), called from this same statement under the lock it
-- already holds. $1 event, $2 user, $3 the lock wait this request can
-- afford (ms, as text), $4 quantity, $5 whether it is a hold, $6 NOWAIT (a
-- statement pipelined behind our own, src/reservation/strategies/for_update.c); $7,
-- $8, $9: the Idempotency-Key record written with the grant, in this
-- statement's transaction (key hash, fingerprint, seconds to keep it), all
-- NULL without a key; its body is the 201's (0006). A key that another
-- request recorded meanwhile fails the statement (0008: SQLSTATE RSK01), so
-- that its grant, by either path, does not commit.
--
-- Why the fast path is exact. Every read of reservations and users here
-- uses the statement's snapshot, taken before the wait for the event's row
-- lock; the locked event row is the newest version, re-read after the wait.
-- The fast path decides only when, after the lock:
--   * the locked row says nobody waits (waiting_count = 0), so nothing is
--     owed to the waiting list, and
--   * the snapshot shows no overdue hold for the event.
-- Then it answers user_not_found, over_limit and already_reserved from the
-- same reads and in the same order as reservd_reserve does (its facts come
-- from a snapshot taken before its lock too), and grants only if the locked
-- row has room: max_tickets - reserved_tickets - held_tickets >= $4. That
-- count includes every hold not yet written EXPIRED, overdue or not, so
-- room there is room in fact: a hold the snapshot missed (committed or
-- fallen due during the wait) can only make the true count larger. It never
-- answers sold_out: too little room may be overdue holds it cannot see
-- (the trap: a stale check would refuse while tickets are free), so that
-- case, anyone waiting, and any overdue hold in sight go to the function,
-- which reads with fresh snapshots after the lock, expires what is due
-- (feeding the waiting list) and decides. A row the snapshot missed that
-- makes the insert conflict (the user's reservation committed during the
-- wait) is caught by the unique index: 'conflict', already_reserved, nothing
-- spent, as in the function. A hold the snapshot missed stays unexpired
-- until the next locked path or the sweeper; tickets_left then counts it,
-- i.e. errs low, never high.
--
-- NOWAIT cannot be a parameter: two locking CTEs, one of them gated off by
-- $6 (a one-time filter, so it neither sets lock_timeout nor locks).
WITH lock_wait AS MATERIALIZED (
  SELECT x.max_tickets, x.reserved_tickets, x.held_tickets, x.waiting_count, x.max_per_user,
         x.hold_seconds
    FROM events x
   WHERE x.id = $1 AND NOT $6::bool
     AND set_config('lock_timeout', $3::text, true) IS NOT NULL
     FOR UPDATE OF x),
lock_nowait AS MATERIALIZED (
  SELECT x.max_tickets, x.reserved_tickets, x.held_tickets, x.waiting_count, x.max_per_user,
         x.hold_seconds
    FROM events x
   WHERE x.id = $1 AND $6::bool
     AND set_config('lock_timeout', $3::text, true) IS NOT NULL
     FOR UPDATE OF x NOWAIT),
ev AS MATERIALIZED (SELECT * FROM lock_wait UNION ALL SELECT * FROM lock_nowait),
facts AS MATERIALIZED (
  SELECT EXISTS (SELECT 1 FROM users u WHERE u.id = $2) AS user_ok,
         EXISTS (SELECT 1 FROM reservations r
                  WHERE r.event_id = $1 AND r.user_id = $2
                    AND (r.status = 'RESERVED'
                         OR (r.status = 'HELD' AND r.expires_at > now()))) AS active,
         EXISTS (SELECT 1 FROM reservations r
                  WHERE r.event_id = $1 AND r.status = 'HELD'
                    AND r.expires_at <= now()) AS overdue),
dec AS MATERIALIZED (
  SELECT CASE WHEN ev.max_tickets IS NULL THEN 'event_not_found'
              WHEN ev.waiting_count > 0 OR f.overdue THEN 'fallback'
              WHEN NOT f.user_ok THEN 'user_not_found'
              WHEN $4::int4 > ev.max_per_user THEN 'over_limit'
              WHEN f.active THEN 'already_reserved'
              WHEN ev.max_tickets - ev.reserved_tickets - ev.held_tickets >= $4::int4
                  THEN 'grant'
              ELSE 'fallback' END AS d,
         ev.max_tickets - ev.reserved_tickets - ev.held_tickets AS left_before,
         ev.max_per_user, ev.hold_seconds
    FROM facts f LEFT JOIN ev ON true),
ins AS (
  INSERT INTO reservations AS r (event_id, user_id, quantity, status, expires_at)
  SELECT $1, $2, $4::int4, CASE WHEN $5::bool THEN 'HELD' ELSE 'RESERVED' END,
         CASE WHEN $5::bool THEN now() + make_interval(secs => dec.hold_seconds) END
    FROM dec WHERE dec.d = 'grant'
  ON CONFLICT (event_id, user_id) WHERE status IN ('HELD', 'RESERVED') DO NOTHING
  RETURNING r.id, r.status, r.reserved_at, r.expires_at),
upd AS (
  UPDATE events x
     SET reserved_tickets = x.reserved_tickets
             + CASE WHEN ins.status = 'RESERVED' THEN $4::int4 ELSE 0 END,
         held_tickets = x.held_tickets + CASE WHEN ins.status = 'HELD' THEN $4::int4 ELSE 0 END
    FROM ins WHERE x.id = $1),
-- the function only when the fast path cannot decide (its p_nowait, true,
-- is taken from dec so that it runs per row of dec, after the lock: this
-- transaction holds the row already, so it does not wait)
fb AS MATERIALIZED (
  SELECT g.* FROM dec,
         LATERAL reservd_reserve($1, ARRAY[$2::int8], ARRAY[$4::int4], ARRAY[$5::bool],
                                 $3::text, dec.d = 'fallback') g
   WHERE dec.d = 'fallback'),
granted AS (
  SELECT ins.id, ins.reserved_at, ins.expires_at FROM ins
  UNION ALL
  SELECT fb.g_reservation_id, fb.g_reserved_at, fb.g_expires_at FROM fb
   WHERE fb.g_outcome = 'reserved'),
idem AS (INSERT INTO idempotency_keys AS k (key_hash, fingerprint, status, body, location,
                                            expires_at)
         SELECT $7::text, $8::text, 201,
                reservd_reservation_created_json(w.id, $1, $2, $4::int4, $5::bool,
                                                 w.reserved_at, w.expires_at),
                '/reservations/' || w.id, now() + make_interval(secs => $9::int4)
         FROM granted w WHERE $7::text IS NOT NULL
         ON CONFLICT (key_hash) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
             status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,
             created_at = now(), expires_at = EXCLUDED.expires_at
         WHERE k.expires_at <= now()
         RETURNING 1)
SELECT coalesce(fb.g_outcome,
                CASE WHEN dec.d <> 'grant' THEN dec.d
                     WHEN ins.id IS NULL THEN 'conflict'
                     ELSE 'reserved' END) AS outcome,
       coalesce(ins.id, fb.g_reservation_id) AS reservation_id,
       floor(extract(epoch FROM coalesce(ins.reserved_at, fb.g_reserved_at)) * 1000)::int8
           AS reserved_at_ms,
       floor(extract(epoch FROM coalesce(ins.expires_at, fb.g_expires_at)) * 1000)::int8
           AS expires_at_ms,
       CASE WHEN fb.g_ord IS NOT NULL THEN fb.g_tickets_left
            WHEN ins.id IS NOT NULL THEN dec.left_before - $4::int4
            ELSE dec.left_before END AS tickets_left,
       coalesce(fb.g_max_per_user, dec.max_per_user) AS max_per_user,
       coalesce(fb.g_holds_expired, 0) AS holds_expired
FROM dec LEFT JOIN ins ON true LEFT JOIN fb ON true
WHERE CASE WHEN $7::text IS NOT NULL AND (ins.id IS NOT NULL OR fb.g_outcome = 'reserved')
                AND NOT EXISTS (SELECT 1 FROM idem)
           THEN reservd_idempotency_key_taken($7::text) ELSE true END
