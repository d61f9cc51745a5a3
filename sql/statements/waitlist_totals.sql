-- /metrics: what the waiting lists did, over every event (sql/migrations/0005).
SELECT coalesce(sum(waitlist_offered), 0)::int8 AS offered,
       coalesce(sum(waitlist_fulfilled), 0)::int8 AS fulfilled,
       coalesce(sum(waitlist_expired), 0)::int8 AS expired
FROM events
