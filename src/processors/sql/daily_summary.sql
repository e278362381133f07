-- DAILY_ROLLUP: the rollup_daily_summary row of the UTC day [$1, $2): distinct users and sessions
-- over all types and sources (per-type rows cannot be added up into these).
INSERT INTO rollup_daily_summary (day, events, unique_users, sessions, errors, orders, revenue)
SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date, t.events, u.users, s.sessions, t.errors, t.orders, t.revenue
FROM (
    SELECT count(*) AS events,
           count(*) FILTER (WHERE event_type = 'error') AS errors,
           count(*) FILTER (WHERE event_type = 'purchase') AS orders,
           coalesce(sum(CASE WHEN event_type = 'purchase' AND jsonb_typeof(properties -> 'amount') = 'number'
                             THEN (properties ->> 'amount')::numeric END), 0) AS revenue
    FROM events WHERE ts >= $1 AND ts < $2
) t,
(SELECT count(*) AS users FROM (SELECT user_id FROM events WHERE ts >= $1 AND ts < $2 AND user_id IS NOT NULL GROUP BY 1) x) u,
(SELECT count(*) AS sessions FROM (SELECT session_id FROM events WHERE ts >= $1 AND ts < $2 AND session_id IS NOT NULL GROUP BY 1) x) s
WHERE t.events > 0
