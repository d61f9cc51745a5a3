INSERT INTO events (name, date, location, max_tickets, max_per_user, hold_seconds, offer_seconds)
VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7)
RETURNING id, name, floor(extract(epoch FROM date) * 1000)::int8 AS date_ms, location,
          max_tickets, reserved_tickets, held_tickets, max_per_user, hold_seconds, offer_seconds,
          waiting_count AS waitlist_length,
          floor(extract(epoch FROM created_at) * 1000)::int8 AS created_at_ms
