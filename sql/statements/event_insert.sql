INSERT INTO events (name, date, location, max_tickets) VALUES ($1, $2::timestamptz, $3, $4)
RETURNING id, name, floor(extract(epoch FROM date) * 1000)::int8 AS date_ms, location,
          max_tickets, reserved_tickets,
          floor(extract(epoch FROM created_at) * 1000)::int8 AS created_at_ms
