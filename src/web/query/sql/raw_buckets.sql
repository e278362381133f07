-- Events of [$1, $2) (unix seconds) in buckets of $3 seconds per event type, filtered by event
-- type $4 and source $5 when given: events, revenue in micro-units, errors.
SELECT (floor(extract(epoch FROM ts) / $3) * $3)::bigint AS bucket, event_type, count(*)::bigint,
       coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                         THEN round((properties ->> 'amount')::numeric * 1000000) END), 0)::bigint,
       count(*) FILTER (WHERE event_type = 'error')::bigint
FROM events
WHERE ts >= to_timestamp($1) AND ts < to_timestamp($2)
  AND ($4::text IS NULL OR event_type = $4) AND ($5::text IS NULL OR source = $5)
GROUP BY 1, 2
