-- HOURLY_ROLLUP: rollup_hourly rows of every hour in [$1, $2), from the events of that range.
-- Two-level grouping (per user first, then per bucket) so PostgreSQL can hash-aggregate the
-- distinct users instead of sorting every row for count(DISTINCT user_id). The per-user level
-- carries only a count (a numeric sum per group made the hash table spill); revenue comes from
-- the purchases alone, and errors are the `error` type's events.
INSERT INTO rollup_hourly (bucket, event_type, source, events, unique_users, revenue, errors)
SELECT p.bucket, p.event_type, p.source, sum(p.events), count(p.user_id),
       coalesce(max(r.revenue), 0), CASE WHEN p.event_type = 'error' THEN sum(p.events) ELSE 0 END
FROM (
    SELECT date_trunc('hour', ts, 'UTC') AS bucket, event_type, source, user_id, count(*) AS events
    FROM events
    WHERE ts >= $1 AND ts < $2
    GROUP BY 1, 2, 3, 4
) p
LEFT JOIN (
    SELECT date_trunc('hour', ts, 'UTC') AS bucket, event_type, source,
           coalesce(sum(CASE WHEN jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue
    FROM events
    WHERE ts >= $1 AND ts < $2 AND event_type = 'purchase'
    GROUP BY 1, 2, 3
) r USING (bucket, event_type, source)
GROUP BY p.bucket, p.event_type, p.source
