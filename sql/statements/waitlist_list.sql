-- An event's line as it stands ($1), a keyset page by position after $2:
-- the entries waiting and those holding an offer that has not expired.
-- The same columns as waitlist_get.sql; the API shows no user data.
SELECT w.id, w.event_id, w.user_id, w.quantity, w.status, w.position, w.reservation_id,
       floor(extract(epoch FROM w.joined_at) * 1000)::int8 AS joined_at_ms,
       CASE WHEN w.status = 'OFFERED'
            THEN floor(extract(epoch FROM r.expires_at) * 1000)::int8 END AS offer_expires_at_ms
FROM waitlist w LEFT JOIN reservations r ON r.id = w.reservation_id
WHERE w.event_id = $1 AND w.position > $2
  AND (w.status = 'WAITING' OR (w.status = 'OFFERED' AND r.expires_at > now()))
ORDER BY w.position LIMIT $3
