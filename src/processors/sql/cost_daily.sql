-- DAILY_ROLLUP: rollup_cost_daily rows of the UTC day [$1, $2): cost events by category and feature.
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date,
       coalesce(properties ->> 'category', 'unknown'), coalesce(properties ->> 'feature', 'unknown'),
       coalesce(sum(CASE WHEN jsonb_typeof(properties -> 'amount') = 'number'
                         THEN (properties ->> 'amount')::numeric END), 0),
       count(*)
FROM events
WHERE ts >= $1 AND ts < $2 AND event_type = 'cost'
GROUP BY 2, 3
