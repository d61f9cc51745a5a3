-- unsafe: the original app's count-then-insert, kept for teaching.
SELECT (SELECT max_tickets FROM events WHERE id = $1) AS max_tickets,
       (SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'RESERVED') AS active,
       EXISTS (SELECT 1 FROM users WHERE id = $2) AS user_found,
       EXISTS (SELECT 1 FROM reservations WHERE event_id = $1 AND user_id = $2
               AND status = 'RESERVED') AS already_held
