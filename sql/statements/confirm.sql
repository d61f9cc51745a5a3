-- reservd_confirm (sql/migrations/) takes the event's lock within $2 ms.
SELECT outcome, confirmed_now, holds_expired FROM reservd_confirm($1, $2)
