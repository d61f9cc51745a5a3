-- for-update: one request through reservd_reserve (sql/migrations/0003):
-- lock the event row (within $3 ms; NOWAIT when $6, for a statement
-- pipelined behind our own), expire its overdue holds, check, insert,
-- count. $4 is the quantity, $5 whether it is a hold.
SELECT g_outcome AS outcome, g_reservation_id AS reservation_id,
       floor(extract(epoch FROM g_reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM g_expires_at) * 1000)::int8 AS expires_at_ms,
       g_tickets_left AS tickets_left, g_max_per_user AS max_per_user,
       g_holds_expired AS holds_expired
FROM reservd_reserve($1, ARRAY[$2::int8], ARRAY[$4::int4], ARRAY[$5::bool], $3, $6::bool)
