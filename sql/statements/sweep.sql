-- The sweeper: reservd_sweep (sql/migrations/) writes the expiry of up to
-- $2 overdue holds on each of up to $1 events whose rows nobody holds.
SELECT expired, more FROM reservd_sweep($1, $2)
