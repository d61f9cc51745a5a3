-- pgbench: the reservation transaction, run by the client itself with one
-- round trip per statement: lock the event row, check, insert, count, commit.
-- Used by loadtest/bench for the spike, hot-event and many-events rows.
--
-- Variables (pgbench -D): n=0 (a per-client counter; pgbench keeps variables
-- between a client's transactions), stride (users per client), nusers (users
-- seeded), e0 and ne (the events: e0 .. e0+ne-1, created fresh for each
-- pgbench invocation). User ids are 1 + (client_id * stride + n) % nusers, so no
-- (event, user) pair repeats within an invocation while a client runs fewer
-- than `stride` transactions: the unique index on active (event_id, user_id)
-- is never hit, and no ON CONFLICT is needed. A sold-out event is answered
-- like the server does: the row lock is taken, nothing is inserted.
\set n :n + 1
\set u 1 + (:client_id * :stride + :n) % :nusers
\set e random(:e0, :e0 + :ne - 1)
BEGIN;
SELECT (reserved_tickets < max_tickets)::int AS open FROM events WHERE id = :e FOR UPDATE \gset
\if :open
INSERT INTO reservations (event_id, user_id) VALUES (:e, :u);
UPDATE events SET reserved_tickets = reserved_tickets + 1 WHERE id = :e;
\endif
COMMIT;
