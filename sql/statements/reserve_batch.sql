-- batch: a group of requests ($2 users, $4 quantities, $5 holds, in arrival
-- order) through reservd_reserve (sql/migrations/0003) under one lock of the
-- event row (within $3 ms): one INSERT and one counter update for the
-- group. Each row answers its request as the per-request path would have
-- at its turn. 'conflict': another writer's active reservation for that
-- user committed meanwhile (ON CONFLICT caught it; nothing spent); the
-- caller requeues the group's sold_out answers, so nobody is refused a
-- ticket that is still there.
SELECT g_ord AS ord, g_outcome AS outcome, g_reservation_id AS reservation_id,
       floor(extract(epoch FROM g_reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM g_expires_at) * 1000)::int8 AS expires_at_ms,
       g_tickets_left AS tickets_left, g_max_per_user AS max_per_user,
       g_holds_expired AS holds_expired
FROM reservd_reserve($1, $2::int8[], $4::int4[], $5::bool[], $3, false)
ORDER BY g_ord
