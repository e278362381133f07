-- DAILY_ROLLUP: rollup_daily rows of the UTC day [$1, $2) (same two-level grouping as hourly.sql).
INSERT INTO rollup_daily (day, event_type, source, events, unique_users, revenue, errors)
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, event_type, source, sum(events), count(user_id), sum(revenue), sum(errors)
FROM (
    SELECT event_type, source, user_id,
           count(*) AS events,
           coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue,
           count(*) FILTER (WHERE event_type = 'error') AS errors
    FROM events
    WHERE ts >= $1 AND ts < $2
    GROUP BY 1, 2, 3
) per_user
GROUP BY event_type, source
