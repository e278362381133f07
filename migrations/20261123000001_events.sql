-- events: every stored analytics event, partitioned by UTC day on the event time `ts`.
--
-- Why day partitions: rollups and reports read whole hours and days, retention drops whole days
-- (DROP TABLE instead of DELETE), and each COPY touches one or two small, hot partitions.
-- Partitions themselves are created by eventmill (a week ahead, and on demand for late days inside
-- retention); `events_default` catches only times outside that window, and health reports its size.
CREATE TABLE events (
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    ts          timestamptz NOT NULL,
    user_id     text,
    session_id  text,
    source      text        NOT NULL,
    properties  jsonb       NOT NULL DEFAULT '{}',
    ingested_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);

-- One index only: every index is paid on every row of every COPY (the largest cost of ingestion).
-- (ts, event_id) serves three purposes at once:
--   * exactly-once storage: a re-delivered stream entry or a client re-send of the same event_id
--     carries the same ts, so it conflicts here and is skipped (a partitioned table's unique key
--     must contain the partition key, which rules out event_id alone);
--   * the time-range scans of rollups, reports and the query API (SPEC section 10), which always
--     bound ts; event_type/source filters are applied to the rows of that range, and the per-day
--     questions go to rollup tables, not here;
--   * cheap maintenance: batches are sorted by ts, so inserts append to the right edge of the btree.
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (ts, event_id);

CREATE TABLE events_default PARTITION OF events DEFAULT;
