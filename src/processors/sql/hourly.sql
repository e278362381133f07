-- HOURLY_ROLLUP: rollup_hourly rows of every hour in [$1, $2), from the events of that range.
-- Two-level grouping (per user first, then per bucket) so PostgreSQL can hash-aggregate the
-- distinct users instead of sorting every row for count(DISTINCT user_id).
INSERT INTO rollup_hourly (bucket, event_type, source, events, unique_users, revenue, errors)
SELECT bucket, event_type, source, sum(events), count(user_id), sum(revenue), sum(errors)
FROM (
    SELECT date_trunc('hour', ts, 'UTC') AS bucket, event_type, source, user_id,
           count(*) AS events,
           coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue,
           count(*) FILTER (WHERE event_type = 'error') AS errors
    FROM events
    WHERE ts >= $1 AND ts < $2
    GROUP BY 1, 2, 3, 4
) per_user
GROUP BY bucket, event_type, source
