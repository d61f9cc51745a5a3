-- atomic: reservd_reserve_atomic (sql/migrations/) takes the ticket with a
-- conditional UPDATE, then inserts.
SELECT outcome, reservation_id,
       floor(extract(epoch FROM reserved_at) * 1000)::int8 AS reserved_at_ms
FROM reservd_reserve_atomic($1, $2, $3)
