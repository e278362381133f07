-- DAILY_ROLLUP: rollup_profile_daily rows of the UTC day [$1, $2): impressions, clicks and the
-- purchases carrying properties.profile_id. $3: only these profiles (NULL = all).
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, properties ->> 'profile_id',
       count(*) FILTER (WHERE event_type = 'impression'),
       count(*) FILTER (WHERE event_type = 'click'),
       count(*) FILTER (WHERE event_type = 'purchase'),
       coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                         THEN (properties ->> 'amount')::numeric END), 0)
FROM events
WHERE ts >= $1 AND ts < $2
  AND event_type IN ('impression', 'click', 'purchase')
  AND properties ->> 'profile_id' IS NOT NULL
  AND ($3::text[] IS NULL OR properties ->> 'profile_id' = ANY ($3))
GROUP BY 2
