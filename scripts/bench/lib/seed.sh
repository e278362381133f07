# Seeds stored events straight into PostgreSQL for the job scenarios (sourced after common.sh).
# Each data set is made once per benchmark database (remembered in bench_seeded), since the
# driver's database lives across runs.

# seed_events NAME FROM TO COUNT MIX: COUNT events evenly between FROM and TO (timestamps, UTC),
# MIX "all" (the loadgen mix: purchases, costs, impressions, clicks, errors, page views...) or
# "engagement" (no purchase or cost events).
seed_events() {
    local name="$1" from="$2" to="$3" count="$4" mix="$5"
    psql_q -c "CREATE TABLE IF NOT EXISTS bench_seeded (name text PRIMARY KEY, rows bigint)"
    [[ -n "$(psql_q -c "SELECT 1 FROM bench_seeded WHERE name = '$name'")" ]] && return 0
    echo "seeding $name: $count events from $from to $to" >&2
    local day
    for day in $(python3 -c "
import datetime as d
a = d.date.fromisoformat('${from:0:10}'); b = d.date.fromisoformat('${to:0:10}')
while a <= b: print(a); a += d.timedelta(days=1)"); do
        local next part
        next=$(date -u -d "$day + 1 day" +%F)
        part="events_p${day//-/}"
        psql_q -c "CREATE TABLE IF NOT EXISTS $part PARTITION OF events FOR VALUES FROM ('$day 00:00+00') TO ('$next 00:00+00')"
    done
    local shift_share=0
    [[ "$mix" == engagement ]] && shift_share=0.045
    psql_q <<SQL
INSERT INTO events (event_id, event_type, ts, user_id, session_id, source, properties, ingested_at)
SELECT gen_random_uuid(),
  CASE WHEN r < 0.010 THEN 'error' WHEN r < 0.035 THEN 'purchase' WHEN r < 0.045 THEN 'cost'
       WHEN r < 0.105 THEN 'add_to_cart' WHEN r < 0.115 THEN 'signup' WHEN r < 0.315 THEN 'impression'
       WHEN r < 0.365 THEN 'click' WHEN r < 0.445 THEN 'feature_used' ELSE 'page_view' END,
  timestamptz '$from' + (timestamptz '$to' - timestamptz '$from') * (i::float8 / $count),
  'user_' || lpad(((hashint4(i) & 2147483647) % 50000)::text, 6, '0'), 'sess_' || (i / 20),
  (ARRAY['web','ios','android'])[1 + (i % 3)],
  CASE WHEN r < 0.010 THEN jsonb_build_object('code', 'E' || (i % 7), 'page', '/checkout')
       WHEN r < 0.035 THEN jsonb_build_object('amount', round((5 + random() * 495)::numeric, 2), 'currency', 'EUR',
                             'profile_id', 'profile_' || lpad(p::text, 2, '0'))
       WHEN r < 0.045 THEN jsonb_build_object('category', (ARRAY['compute','storage','network'])[1 + i % 3],
                             'feature', (ARRAY['search','export','chat'])[1 + i % 3], 'amount', round((random() * 20)::numeric, 2))
       WHEN r < 0.105 THEN jsonb_build_object('sku', 'sku_' || (i % 500))
       WHEN r < 0.115 THEN '{"plan":"free"}'::jsonb
       WHEN r < 0.365 THEN jsonb_build_object('profile_id', 'profile_' || lpad(p::text, 2, '0'))
       WHEN r < 0.445 THEN jsonb_build_object('feature', (ARRAY['search','export','chat'])[1 + i % 3])
       ELSE jsonb_build_object('path', (ARRAY['/','/pricing','/docs','/blog','/signup'])[1 + i % 5]) END,
  now()
FROM generate_series(0, $count - 1) AS i,
LATERAL (SELECT $shift_share + random() * (1 - $shift_share) + i * 0 AS r, (random() * 39)::int + 1 + i * 0 AS p) AS x;
INSERT INTO bench_seeded VALUES ('$name', $count);
ANALYZE events;
SQL
}
