-- DAILY_ROLLUP: rollup_daily rows of the UTC day [$1, $2). Distinct users by two-level grouping
-- (per user first, then per type and source) so PostgreSQL hash-aggregates instead of sorting. The
-- per-user level carries only a count: a numeric sum per group (693K groups over a 2.4M-event day)
-- made the hash table spill to disk; revenue comes from the purchases alone, and errors are the
-- `error` type's events.
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, p.event_type, p.source, sum(p.events), count(p.user_id),
       coalesce(max(r.revenue), 0), CASE WHEN p.event_type = 'error' THEN sum(p.events) ELSE 0 END
FROM (
    SELECT event_type, source, user_id, count(*) AS events
    FROM events
    WHERE ts >= $1 AND ts < $2
    GROUP BY 1, 2, 3
) p
LEFT JOIN (
    SELECT event_type, source,
           coalesce(sum(CASE WHEN jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue
    FROM events
    WHERE ts >= $1 AND ts < $2 AND event_type = 'purchase'
    GROUP BY 1, 2
) r USING (event_type, source)
GROUP BY p.event_type, p.source
