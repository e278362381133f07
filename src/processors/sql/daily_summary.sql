-- DAILY_ROLLUP: the rollup_daily_summary row of the UTC day [$1, $2): distinct users and sessions
-- over all types and sources (per-type rows cannot be added up into these). One scan feeds the
-- distinct users, the distinct sessions and the totals (hashed grouping sets), where three
-- separate scans did; revenue comes from the purchases alone.
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, t.events, t.users, t.sessions, t.errors, t.orders, r.revenue
FROM (
    SELECT sum(n) FILTER (WHERE g = 3) AS events,
           count(*) FILTER (WHERE g = 1 AND user_id IS NOT NULL) AS users,
           count(*) FILTER (WHERE g = 2 AND session_id IS NOT NULL) AS sessions,
           sum(errors) FILTER (WHERE g = 3) AS errors,
           sum(orders) FILTER (WHERE g = 3) AS orders
    FROM (
        SELECT GROUPING(user_id, session_id) AS g, user_id, session_id, count(*) AS n,
               count(*) FILTER (WHERE event_type = 'error') AS errors,
               count(*) FILTER (WHERE event_type = 'purchase') AS orders
        FROM events
        WHERE ts >= $1 AND ts < $2
        GROUP BY GROUPING SETS ((user_id), (session_id), ())
    ) sets
) t,
(
    SELECT coalesce(sum(CASE WHEN jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue
    FROM events
    WHERE ts >= $1 AND ts < $2 AND event_type = 'purchase'
) r
WHERE t.events > 0
