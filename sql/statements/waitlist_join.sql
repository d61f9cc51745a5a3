-- POST /events/{id}/waitlist: reservd_waitlist_join (sql/migrations/0005)
-- takes the event's lock within $4 ms ($3 the quantity); then the entry it
-- made, as reservd_waitlist_entry sees it after the join (NULLs when none).
SELECT j.outcome, j.tickets_left, j.max_per_user, j.holds_expired, v.id, v.event_id, v.user_id,
       v.quantity, v.status, v."position", v.reservation_id, v.joined_at_ms, v.offer_expires_at_ms
FROM reservd_waitlist_join($1, $2, $3::int4, $4) j
LEFT JOIN LATERAL reservd_waitlist_entry(j.entry_id) v ON true
