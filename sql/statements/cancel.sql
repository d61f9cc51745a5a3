-- reservd_cancel (sql/migrations/) takes the event's lock within $2 ms.
SELECT outcome, cancelled_now, was_held, holds_expired FROM reservd_cancel($1, $2)
