-- pgbench: the query behind GET /events/{id} (src/db/queries.c STMT_EVENT_GET),
-- over the same events the reservd run reads: e0 .. e0+ne-1 (pgbench -D).
\set e random(:e0, :e0 + :ne - 1)
SELECT id, name, floor(extract(epoch FROM date) * 1000)::int8, location, max_tickets,
       reserved_tickets, floor(extract(epoch FROM created_at) * 1000)::int8
  FROM events WHERE id = :e;
