-- PATCH /events/{id}: reservd_event_update (sql/migrations/) takes the
-- event's lock within $9 ms; NULL leaves a field as it is.
SELECT outcome, tickets_out, holds_expired
FROM reservd_event_update($1, $2, $3::timestamptz, $4, $5::int4, $6::int4, $7::int4, $8::int4, $9)
