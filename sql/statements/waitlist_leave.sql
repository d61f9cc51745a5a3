-- DELETE /waitlist/{id}: reservd_waitlist_leave (sql/migrations/0005) takes
-- the event's lock within $2 ms; then the entry as it is after.
SELECT l.outcome, l.left_now, l.offer_cancelled, l.holds_expired, v.id, v.event_id, v.user_id,
       v.quantity, v.status, v."position", v.reservation_id, v.joined_at_ms, v.offer_expires_at_ms
FROM reservd_waitlist_leave($1, $2) l
LEFT JOIN LATERAL reservd_waitlist_entry(l.entry_id) v ON true
