-- GET /waitlist/{id}: the entry as clients see it (sql/migrations/0005).
SELECT v.id, v.event_id, v.user_id, v.quantity, v.status, v."position", v.reservation_id,
       v.joined_at_ms, v.offer_expires_at_ms
FROM reservd_waitlist_entry($1) v
