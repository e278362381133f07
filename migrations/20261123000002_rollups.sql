-- Rollup tables (SPEC section 7), written by the HOURLY_ROLLUP and DAILY_ROLLUP jobs with replace
-- semantics: a job deletes its window's rows and inserts the recomputed ones in one transaction,
-- so re-runs and concurrent runs never double count, and a re-run picks up late events.
-- Reports (SPEC section 9) read these tables; money is `numeric` so sums of cents stay exact.

-- Per (hour, event_type, source).
CREATE TABLE rollup_hourly (
    bucket       timestamptz NOT NULL,
    event_type   text        NOT NULL,
    source       text        NOT NULL,
    events       bigint      NOT NULL,
    unique_users bigint      NOT NULL,  -- distinct user_id; events without a user are not counted
    revenue      numeric     NOT NULL,  -- sum of properties.amount on purchase events
    errors       bigint      NOT NULL,  -- events of type `error`
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, event_type, source)
);

-- Per (UTC day, event_type, source): same measures as hourly (unique users are distinct per day,
-- which hourly rows cannot give, so the daily rollup reads events, not hourly rows).
CREATE TABLE rollup_daily (
    day          date        NOT NULL,
    event_type   text        NOT NULL,
    source       text        NOT NULL,
    events       bigint      NOT NULL,
    unique_users bigint      NOT NULL,
    revenue      numeric     NOT NULL,
    errors       bigint      NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, event_type, source)
);

-- Per UTC day over all types and sources: the distinct counts that per-type rows cannot add up to.
CREATE TABLE rollup_daily_summary (
    day          date        PRIMARY KEY,
    events       bigint      NOT NULL,
    unique_users bigint      NOT NULL,
    sessions     bigint      NOT NULL,  -- distinct session_id
    errors       bigint      NOT NULL,
    orders       bigint      NOT NULL,  -- purchase events
    revenue      numeric     NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);

-- Per (ad/profile, UTC day): impressions, clicks and the purchases attributed to the profile
-- (purchase events carrying properties.profile_id).
CREATE TABLE rollup_profile_daily (
    day          date        NOT NULL,
    profile_id   text        NOT NULL,
    impressions  bigint      NOT NULL,
    clicks       bigint      NOT NULL,
    purchases    bigint      NOT NULL,
    revenue      numeric     NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, profile_id)
);

-- Per (UTC day, cost category, feature): sum of properties.amount on `cost` events.
CREATE TABLE rollup_cost_daily (
    day          date        NOT NULL,
    category     text        NOT NULL,
    feature      text        NOT NULL,
    amount       numeric     NOT NULL,
    events       bigint      NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, category, feature)
);
