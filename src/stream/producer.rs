//! Appends accepted events to the stream: one MULTI/EXEC pipeline per request, so a request's
//! events are either all in the stream or none are, and the client may safely re-send. With
//! several shards (`EVENTMILL_STREAM_SHARDS`), requests take turns over them, each whole into one. Events
//! are packed [`EVENTS_PER_ENTRY`] to an entry: Redis' cost is per entry, not per event.
//!
//! Idempotency of client-chosen ids without a timestamp (the row is keyed by time and id, so a
//! re-send must get the first send's time): a UUIDv7 id carries its own creation time, which
//! becomes the event time with no state at all; any other id pins its first arrival time in a
//! key that lives for the re-send window (`EVENTMILL_RESEND_WINDOW_SECS`), so Redis holds
//! `rate x window` such keys at most, not a day's worth.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use crate::redis_conn::RedisConn;
use chrono::{DateTime, TimeZone, Utc};

use super::{
    StreamKeys,
    entry::{self, EVENT_FIELD, EVENTS_PER_ENTRY, REQUEST_FIELD, TRACE_FIELD},
};
use crate::{
    domain::Event,
    redis_limits::{RedisWatch, Refusal},
    settings::IngestSettings,
};

/// A UUIDv7's time is the event time only if it is at most this far ahead of the arrival time
/// (clock skew); an id from further in the future pins its arrival time like any other id.
const V7_MAX_AHEAD_MICROS: i64 = 3600 * 1_000_000;

/// Why events could not be appended; both mean "try again later" to the client.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event stream is full ({backlog} entries not yet stored); retry later")]
    Backpressure { backlog: u64 },
    #[error("Redis is unreachable: {0}")]
    Unavailable(String),
    /// Redis' memory is above `EVENTMILL_REDIS_MEMORY_HIGH_WATER`, or Redis refused the write for
    /// lack of memory: the message names the figures.
    #[error("{0}")]
    MemoryFull(String),
    /// Redis is up but refuses writes (read-only replica, persistence failing): cause and fix.
    #[error("{0}")]
    Refused(String),
}

/// The write side of the stream, shared by every HTTP handler.
#[derive(Clone)]
pub struct Producer {
    conn: RedisConn,
    shards: Arc<Vec<StreamKeys>>,
    settings: IngestSettings,
    /// Unsaved events in each shard as of the last append to it (its length times the events per
    /// entry this producer writes): the backpressure gauges, refreshed on every append.
    backlog: Arc<Vec<AtomicU64>>,
    /// Turns over the shards.
    next_shard: Arc<AtomicUsize>,
    /// Events and entries this producer appended, for the events-per-entry ratio.
    appended: Arc<(AtomicU64, AtomicU64)>,
    /// Redis' memory against the high-water mark, and the refusals met (`redis_limits`).
    watch: RedisWatch,
}

impl Producer {
    pub fn new(conn: RedisConn, shards: Arc<Vec<StreamKeys>>, settings: IngestSettings) -> Self {
        let backlog = Arc::new(shards.iter().map(|_| AtomicU64::new(0)).collect());
        let watch = RedisWatch::new(Default::default());
        Self { conn, shards, settings, backlog, next_shard: Arc::default(), appended: Arc::default(), watch }
    }

    /// The producer that refuses new events above the high-water mark of `watch`'s readings.
    pub fn with_watch(self, watch: RedisWatch) -> Self {
        Self { watch, ..self }
    }

    /// Appends `events` (already validated) in one atomic pipeline.
    #[tracing::instrument(skip_all, fields(events = events.len(), request_id))]
    pub async fn publish(&self, events: &mut [Event], request_id: &str) -> Result<(), PublishError> {
        let timeout = self.settings.redis_timeout;
        if let Some(full) = self.watch.refuses_new_writes() {
            return Err(PublishError::MemoryFull(full));
        }
        match tokio::time::timeout(timeout, self.publish_inner(events, request_id)).await {
            Ok(result) => {
                if result.is_ok() {
                    self.watch.accepted();
                }
                result
            }
            Err(_) => Err(PublishError::Unavailable(format!("no answer within {} ms", timeout.as_millis()))),
        }
    }

    async fn publish_inner(&self, events: &mut [Event], request_id: &str) -> Result<(), PublishError> {
        let mut conn = self.conn.clone();
        let shard = self.pick_shard(&mut conn).await?;
        let keys = &self.shards[shard];
        self.pin_arrival_times(&mut conn, events).await?;
        let now = Utc::now();
        // Under a trace (a request with `traceparent`, traces exported): the entries carry it.
        let trace = eventmill_jobs::queue::trace::current();
        let mut pipe = redis::pipe();
        pipe.atomic();
        let chunks = events.len().div_ceil(EVENTS_PER_ENTRY);
        // Even chunks: 101 events are two entries of 51 and 50, not 100 and 1.
        let per_entry = events.len().div_ceil(chunks.max(1)).max(1);
        let entries = events.chunks(per_entry).len();
        for (index, chunk) in events.chunks(per_entry).enumerate() {
            pipe.cmd("XADD")
                .arg(&keys.events)
                .arg("*")
                .arg(EVENT_FIELD)
                .arg(entry::encode_packed(chunk, now))
                .arg(REQUEST_FIELD)
                .arg(request_id);
            if let Some(trace) = &trace {
                pipe.arg(TRACE_FIELD).arg(trace);
            }
            // The last entry's id is kept: it proves the request is on the replicas too.
            if index + 1 < entries {
                pipe.ignore();
            }
        }
        pipe.cmd("XLEN").arg(&keys.events);
        let (last, len): (String, u64) = pipe.query_async(&mut conn).await.map_err(|e| self.refusal(e))?;
        // On the replicas too before the 202 (`EVENTMILL_REDIS_WAIT_REPLICAS`): a failover then
        // cannot lose it. If not, the 503 makes the client re-send, and storage drops the copy.
        let proof = || redis::cmd("XRANGE").arg(&keys.events).arg(&last).arg(&last).clone();
        conn.replicated(proof).await.map_err(|e| self.refusal(e))?;
        self.appended.0.fetch_add(events.len() as u64, Ordering::Relaxed);
        self.appended.1.fetch_add(entries as u64, Ordering::Relaxed);
        self.backlog[shard].store(self.events_in(len), Ordering::Relaxed);
        Ok(())
    }

    /// Estimated events in a stream of `entries` entries (also `/healthz/detailed`'s fill check).
    pub fn events_in(&self, entries: u64) -> u64 {
        let (events, appended) = (self.appended.0.load(Ordering::Relaxed), self.appended.1.load(Ordering::Relaxed));
        entries.saturating_mul(events).checked_div(appended).unwrap_or(entries)
    }

    /// The shard this request goes to: the next in turn whose backlog is under its share of the
    /// high-water mark. Refuses new events while every shard holds more unsaved events than that:
    /// entries are never trimmed before they are stored, so no stream may grow without bound.
    async fn pick_shard(&self, conn: &mut RedisConn) -> Result<usize, PublishError> {
        let count = self.shards.len();
        let high_water = self.settings.stream_high_water.div_ceil(count as u64);
        let first = self.next_shard.fetch_add(1, Ordering::Relaxed) % count;
        let mut total = 0;
        for shard in (first..count).chain(0..first) {
            if self.backlog[shard].load(Ordering::Relaxed) < high_water {
                return Ok(shard);
            }
            let len: u64 = redis::cmd("XLEN")
                .arg(&self.shards[shard].events)
                .query_async(conn)
                .await
                .map_err(|e| self.refusal(e))?;
            let backlog = self.events_in(len);
            self.backlog[shard].store(backlog, Ordering::Relaxed);
            if backlog < high_water {
                return Ok(shard);
            }
            total += backlog;
        }
        Err(PublishError::Backpressure { backlog: total })
    }

    /// A client that sends its own `event_id` but no timestamp gets the same event time on every
    /// re-send, so the stored row (keyed by time and id) is the same one: its UUIDv7's time, or the
    /// arrival time of its first send within the re-send window.
    async fn pin_arrival_times(&self, conn: &mut RedisConn, events: &mut [Event]) -> Result<(), PublishError> {
        let mut pinned = Vec::new();
        for (i, event) in events.iter_mut().enumerate() {
            if !(event.event_id_given && event.timestamp_defaulted) {
                continue;
            }
            match v7_time(&event.event_id, event.ts) {
                Some(ts) => event.ts = ts,
                None => pinned.push(i),
            }
        }
        if pinned.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for &i in &pinned {
            let event = &events[i];
            pipe.cmd("SET")
                .arg(format!("{}{}", self.shards[0].pinned_ts, event.event_id))
                .arg(event.ts.timestamp_micros())
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(self.settings.resend_window.as_secs().max(1));
        }
        let earlier: Vec<Option<i64>> = pipe.query_async(conn).await.map_err(|e| self.refusal(e))?;
        let proof =
            || redis::cmd("EXISTS").arg(format!("{}{}", self.shards[0].pinned_ts, events[pinned[0]].event_id)).clone();
        conn.replicated(proof).await.map_err(|e| self.refusal(e))?;
        for (&i, first) in pinned.iter().zip(earlier) {
            if let Some(ts) = first.and_then(|micros| Utc.timestamp_micros(micros).single()) {
                events[i].ts = ts;
            }
        }
        Ok(())
    }
}

/// The creation time a UUIDv7 carries (millisecond precision), unless it lies too far ahead of `now`.
fn v7_time(id: &uuid::Uuid, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    let ts = Utc.timestamp_opt(seconds as i64, nanos).single()?;
    (ts.timestamp_micros() - now.timestamp_micros() <= V7_MAX_AHEAD_MICROS).then_some(ts)
}

impl Producer {
    /// A Redis error as the client's answer: a refusal (full, read-only, persistence failing)
    /// with its cause and fix, said once in the log; anything else "unreachable".
    fn refusal(&self, error: redis::RedisError) -> PublishError {
        match self.watch.refused("ingestion", &error) {
            Some(Refusal::OutOfMemory) => PublishError::MemoryFull(format!(
                "{}; retry later",
                Refusal::OutOfMemory.describe(self.watch.memory().as_ref())
            )),
            Some(refusal) => PublishError::Refused(refusal.describe(None)),
            None => PublishError::Unavailable(error.to_string()),
        }
    }
}
