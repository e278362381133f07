-- How far each day's daily rollup is complete (SPEC section 9: "reports are never stale").
--
-- The DAILY_ROLLUP job counts the day's stored events first, in its own transaction and before it
-- reads them for the rollup tables, and records that count and the time of the count here (one row
-- per day, replaced by each full re-run). Rows are only ever added to a day (exactly-once storage,
-- retention drops whole days), so a day whose stored count is now larger than `events_seen` got
-- events after its rollup (today's traffic, late events) and a report recomputes it first.
--
-- Why a count and not the newest `ingested_at`: `ingested_at` is the time an event entered the
-- stream, not the time its row became visible (a consumer may commit it much later), and there is
-- no index on it, so `max(ingested_at)` reads the whole heap of a day while `count(*)` over a ts
-- range can use the primary key. Measured on a 600,000-row day: both ~80-170 ms.
CREATE TABLE rollup_freshness (
    day          date        PRIMARY KEY,
    -- Stored events of the day when the rollup started: every one of them is in the rollup.
    events_seen  bigint      NOT NULL,
    -- Every event stored before this instant is in the rollup (the start of the count).
    complete_to  timestamptz NOT NULL
);
