-- atomic: reservd_reserve_atomic (sql/migrations/) takes the tickets with
-- a conditional UPDATE, then inserts. $4 quantity, $5 hold.
SELECT outcome, reservation_id,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms,
       floor(extract(epoch FROM expires_at) * 1000)::int8 AS expires_at_ms,
       tickets_left, max_per_user, holds_expired
FROM reservd_reserve_atomic($1, $2, $4::int4, $5::bool, $3)
