//! Appends accepted events to the stream: one MULTI/EXEC pipeline per request, so a request's
//! events are either all in the stream or none are, and the client may safely re-send.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use chrono::{TimeZone, Utc};
use redis::aio::ConnectionManager;

use super::{
    StreamKeys,
    entry::{self, EVENT_FIELD, REQUEST_FIELD},
};
use crate::{domain::Event, settings::IngestSettings};

/// How long a pinned arrival time is remembered for a client-identified event (its re-send window).
const PIN_TTL_SECONDS: u64 = 24 * 3600;

/// Why events could not be appended; both mean "try again later" to the client.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the event stream is full ({backlog} entries not yet stored); retry later")]
    Backpressure { backlog: u64 },
    #[error("Redis is unreachable: {0}")]
    Unavailable(String),
}

/// The write side of the stream, shared by every HTTP handler.
#[derive(Clone)]
pub struct Producer {
    conn: ConnectionManager,
    keys: StreamKeys,
    settings: IngestSettings,
    /// Stream length seen by the last append: the backpressure gauge, refreshed on every append.
    backlog: Arc<AtomicU64>,
}

impl Producer {
    pub fn new(conn: ConnectionManager, keys: StreamKeys, settings: IngestSettings) -> Self {
        Self { conn, keys, settings, backlog: Arc::new(AtomicU64::new(0)) }
    }

    /// Appends `events` (already validated) in one atomic pipeline.
    #[tracing::instrument(skip_all, fields(events = events.len(), request_id))]
    pub async fn publish(&self, events: &mut [Event], request_id: &str) -> Result<(), PublishError> {
        let timeout = self.settings.redis_timeout;
        match tokio::time::timeout(timeout, self.publish_inner(events, request_id)).await {
            Ok(result) => result,
            Err(_) => Err(PublishError::Unavailable(format!("no answer within {} ms", timeout.as_millis()))),
        }
    }

    async fn publish_inner(&self, events: &mut [Event], request_id: &str) -> Result<(), PublishError> {
        let mut conn = self.conn.clone();
        self.check_backlog(&mut conn).await?;
        self.pin_arrival_times(&mut conn, events).await?;
        let now = Utc::now();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in events.iter() {
            pipe.cmd("XADD")
                .arg(&self.keys.events)
                .arg("*")
                .arg(EVENT_FIELD)
                .arg(entry::encode(event, now))
                .arg(REQUEST_FIELD)
                .arg(request_id)
                .ignore();
        }
        pipe.cmd("XLEN").arg(&self.keys.events);
        let (len,): (u64,) = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        self.backlog.store(len, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses new events while the stream holds more unsaved entries than its high-water mark:
    /// entries are never trimmed before they are stored, so the stream must not grow without bound.
    async fn check_backlog(&self, conn: &mut ConnectionManager) -> Result<(), PublishError> {
        let high_water = self.settings.stream_high_water;
        if self.backlog.load(Ordering::Relaxed) < high_water {
            return Ok(());
        }
        let len: u64 = redis::cmd("XLEN").arg(&self.keys.events).query_async(conn).await.map_err(unavailable)?;
        self.backlog.store(len, Ordering::Relaxed);
        if len >= high_water { Err(PublishError::Backpressure { backlog: len }) } else { Ok(()) }
    }

    /// A client that sends its own `event_id` but no timestamp gets the arrival time of the first
    /// send on every re-send, so the stored row (keyed by time and id) is the same one.
    async fn pin_arrival_times(&self, conn: &mut ConnectionManager, events: &mut [Event]) -> Result<(), PublishError> {
        let pinned: Vec<usize> =
            (0..events.len()).filter(|&i| events[i].event_id_given && events[i].timestamp_defaulted).collect();
        if pinned.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for &i in &pinned {
            let event = &events[i];
            pipe.cmd("SET")
                .arg(format!("{}{}", self.keys.pinned_ts, event.event_id))
                .arg(event.ts.timestamp_micros())
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(PIN_TTL_SECONDS);
        }
        let earlier: Vec<Option<i64>> = pipe.query_async(conn).await.map_err(unavailable)?;
        for (&i, first) in pinned.iter().zip(earlier) {
            if let Some(ts) = first.and_then(|micros| Utc.timestamp_micros(micros).single()) {
                events[i].ts = ts;
            }
        }
        Ok(())
    }
}

fn unavailable(error: redis::RedisError) -> PublishError {
    PublishError::Unavailable(error.to_string())
}
