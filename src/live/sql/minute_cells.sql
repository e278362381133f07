-- The live counters of one minute ($1 = its first unix second), as the consumer would have counted
-- them: events and revenue in micro-units per (second, event_type, source).
SELECT floor(extract(epoch FROM ts))::bigint AS sec, event_type, source, count(*)::bigint AS events,
       coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                         THEN round((properties ->> 'amount')::numeric * 1000000) END), 0)::bigint AS revenue
FROM events
WHERE ts >= to_timestamp($1) AND ts < to_timestamp($1 + 60)
GROUP BY 1, 2, 3
