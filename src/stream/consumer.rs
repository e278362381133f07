//! Reads the event stream in a consumer group and stores events in PostgreSQL.
//!
//! One step (`consume_once`): reclaim entries left pending by dead consumers (XAUTOCLAIM) when it
//! is time, read new entries until a batch is full or the flush interval ends, store them sorted by
//! time (one COPY, one commit), then XACK. An entry is acknowledged only after its row is
//! committed, so a crash at any point re-delivers it, and the primary key skips what was already
//! stored. An entry holds one event or a packed list of them; an event that fails
//! `max_deliveries` times moves alone to the dead-letter stream with the reason, the rest are stored.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply};
use sqlx::PgPool;

use super::{
    StreamKeys, dead_letter,
    dead_letter::DeadLetter,
    entry::EVENTS_PER_ENTRY,
    group, oom,
    reply::{self, Entry},
    settle,
};
use crate::redis_conn::RedisConn;
use crate::{
    live,
    redis_limits::refusal::{self, Episode},
    settings::ConsumerSettings,
    shutdown::Shutdown,
    store::{self, EventRow, Partitions},
};

/// How often acknowledged entries are trimmed from the stream.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to store within the flush interval.
    Idle,
    /// A batch was handled: events stored, events left pending for a retry, events dead-lettered.
    Stored { rows: usize, retry_later: usize, dead_lettered: usize },
    /// PostgreSQL could not take the batch; it is kept and retried on the next step.
    StoreUnavailable,
}

/// How long a stopping consumer keeps storing what the stream holds.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// A member of the storage consumer group.
pub struct Consumer {
    redis: RedisConn,
    pool: PgPool,
    partitions: Arc<Partitions>,
    keys: StreamKeys,
    name: String,
    settings: ConsumerSettings,
    buffer: Vec<Entry>,
    /// Events in `buffer` (the batch size counts events, whatever their packing).
    buffered_events: usize,
    /// Events per entry in the last read, to ask XREADGROUP for about a batch's worth.
    events_per_entry: usize,
    /// Last failure of each event left pending, by event key: the reason if it is dead-lettered.
    last_errors: HashMap<String, String>,
    next_reclaim: Instant,
    next_trim: Instant,
    /// Redis refusing writes (OOM, READONLY, MISCONF): said once when it starts and ends.
    refusals: Episode,
    /// Batches are acknowledged without live counts because Redis is out of memory (`oom`).
    uncounted: bool,
}

impl Consumer {
    /// Joins the group (creating it when missing). `redis` should be a connection of its own:
    /// XREADGROUP blocks it for up to the flush interval.
    pub async fn new(
        mut redis: RedisConn,
        pool: PgPool,
        partitions: Arc<Partitions>,
        keys: StreamKeys,
        name: String,
        settings: ConsumerSettings,
    ) -> redis::RedisResult<Self> {
        super::ensure_group(&mut redis, &keys).await?;
        let now = Instant::now();
        Ok(Self {
            redis,
            pool,
            partitions,
            keys,
            name,
            settings,
            buffer: Vec::new(),
            buffered_events: 0,
            events_per_entry: EVENTS_PER_ENTRY / 2,
            last_errors: HashMap::new(),
            next_reclaim: now,
            next_trim: now,
            refusals: Episode::default(),
            uncounted: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs steps until shutdown; on shutdown the batch in hand is stored and acknowledged first.
    pub async fn run(mut self, shutdown: Shutdown) -> anyhow::Result<()> {
        tracing::info!(consumer = %self.name, "stream consumer started");
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.consume_once().await {
                Ok(Outcome::StoreUnavailable) => backoff.wait(&shutdown).await,
                Ok(_) => {
                    backoff.reset();
                    self.refusals.recovered("stream consumer");
                }
                Err(error) => {
                    if self.refusals.failed("stream consumer", &error).is_none() {
                        tracing::warn!(consumer = %self.name, %error, "stream unavailable; retrying");
                    }
                    if error.code() == Some("NOGROUP") {
                        let _ = super::ensure_group(&mut self.redis, &self.keys).await;
                    }
                    backoff.wait(&shutdown).await;
                }
            }
        }
        self.drain().await;
        tracing::info!(consumer = %self.name, unstored = self.buffer.len(), "stream consumer stopped");
        Ok(())
    }

    /// On shutdown, stores what the stream already holds (a process stopped right after its API
    /// accepted events, before this consumer's first read, stores them too), for at most
    /// `DRAIN_LIMIT`; whatever is left stays in the stream for the next consumer.
    async fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while Instant::now() < deadline {
            match self.consume_once().await {
                Ok(Outcome::Stored { rows, .. }) if rows > 0 => continue,
                _ => return,
            }
        }
    }

    /// One step: reclaim or read a batch, store it, acknowledge it.
    #[tracing::instrument(skip_all, fields(consumer = %self.name))]
    pub async fn consume_once(&mut self) -> redis::RedisResult<Outcome> {
        if self.buffer.is_empty() {
            if Instant::now() >= self.next_reclaim {
                self.reclaim().await?;
                let silent = 10 * self.settings.reclaim_idle;
                group::forget_stopped_consumers(&mut self.redis, &self.keys, &self.name, silent).await?;
                self.next_reclaim = Instant::now() + self.settings.reclaim_interval;
            }
            self.read_new().await?;
        }
        let started = Instant::now();
        let outcome = if self.buffer.is_empty() { Outcome::Idle } else { self.store_buffer().await? };
        if let Outcome::Stored { rows, dead_lettered, .. } = outcome {
            crate::metrics::flush(started, Some((rows, dead_lettered)));
        } else if outcome == Outcome::StoreUnavailable {
            crate::metrics::flush(started, None);
        }
        if Instant::now() >= self.next_trim {
            group::trim_stored(&mut self.redis, &self.keys).await?;
            self.next_trim = Instant::now() + TRIM_INTERVAL;
        }
        Ok(outcome)
    }

    /// Reads new entries until the batch is full or the flush interval has passed.
    async fn read_new(&mut self) -> redis::RedisResult<()> {
        let deadline = Instant::now() + self.settings.flush_interval;
        loop {
            let missing = self.settings.batch_size.saturating_sub(self.buffered_events);
            let left = deadline.saturating_duration_since(Instant::now());
            if missing == 0 || left.is_zero() {
                return Ok(());
            }
            let wanted = missing.div_ceil(self.events_per_entry.max(1));
            // Parsed by hand: redis-rs' `StreamReadReply` clones the whole reply and builds a map
            // per entry, which cost more CPU than the COPY of the same rows.
            let reply: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.keys.group)
                .arg(&self.name)
                .arg("COUNT")
                .arg(wanted)
                .arg("BLOCK")
                .arg(left.as_millis().max(1) as u64)
                .arg("STREAMS")
                .arg(&self.keys.events)
                .arg(">")
                .query_async(&mut self.redis)
                .await?;
            let before = self.buffer.len();
            reply::read_entries(reply, &mut self.buffer);
            let read = self.buffer.len() - before;
            if read == 0 {
                return Ok(());
            }
            let events: usize = self.buffer[before..].iter().map(|e| e.events.len()).sum();
            self.buffered_events += events;
            self.events_per_entry = events / read;
        }
    }

    /// Takes over entries other (dead or stuck) consumers left unacknowledged for longer than
    /// `reclaim_idle`, and this consumer's own failed entries once they are due for a retry.
    async fn reclaim(&mut self) -> redis::RedisResult<usize> {
        let mut claimed: Vec<StreamId> = Vec::new();
        let mut cursor = "0-0".to_owned();
        loop {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.keys.events)
                .arg(&self.keys.group)
                .arg(&self.name)
                .arg(self.settings.reclaim_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg(self.settings.batch_size.div_ceil(self.events_per_entry.max(1)))
                .query_async(&mut self.redis)
                .await?;
            claimed.extend(reply.claimed);
            cursor = reply.next_stream_id;
            if cursor == "0-0" || claimed.len() * self.events_per_entry.max(1) >= self.settings.batch_size {
                break;
            }
        }
        let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else { return Ok(0) };
        let counts: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.keys.events)
            .arg(&self.keys.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(claimed.len() + 10_000)
            .arg(&self.name)
            .query_async(&mut self.redis)
            .await?;
        let deliveries: HashMap<String, u64> =
            counts.ids.into_iter().map(|p| (p.id, p.times_delivered as u64)).collect();
        let mut exhausted = Vec::new();
        let total = claimed.len();
        for stream_id in claimed {
            let entry = reply::entry_of(stream_id.clone(), deliveries.get(&stream_id.id).copied().unwrap_or(2));
            // More deliveries than allowed without a recorded failure: its consumers kept dying.
            if entry.deliveries > self.settings.max_deliveries {
                exhausted.push(entry);
            } else {
                self.buffered_events += entry.events.len();
                self.buffer.push(entry);
            }
        }
        tracing::info!(claimed = total, exhausted = exhausted.len(), "reclaimed pending entries");
        if !exhausted.is_empty() {
            let letters: Vec<DeadLetter> = exhausted
                .iter()
                .map(|e| {
                    let recorded = (0..e.events.len()).find_map(|k| self.last_errors.remove(&settle::event_key(e, k)));
                    let reason = recorded.unwrap_or_else(|| {
                        format!(
                            "delivered {} times without being stored (its consumers stopped or timed out)",
                            e.deliveries
                        )
                    });
                    settle::entry_letter(e, reason)
                })
                .collect();
            let ids: Vec<&str> = exhausted.iter().map(|e| e.id.as_str()).collect();
            self.acknowledge(&ids, &letters, &live::Tally::default()).await?;
            crate::metrics::dead_lettered(letters.len());
        }
        Ok(total)
    }

    /// Stores the buffer and acknowledges what was stored or dead-lettered.
    async fn store_buffer(&mut self) -> redis::RedisResult<Outcome> {
        // Entries of traced requests: a span each, continuing the request's trace, while stored.
        let _traced = traced_entries(&self.buffer);
        // Every readable event by (entry, event), in time order: in-order index inserts are cheaper.
        let mut order: Vec<(usize, usize, i64)> = Vec::with_capacity(self.buffered_events);
        for (e, entry) in self.buffer.iter().enumerate() {
            for (k, event) in entry.events.iter().enumerate() {
                if let Ok(row) = &event.row {
                    order.push((e, k, row.ts_micros));
                }
            }
        }
        order.sort_unstable_by_key(|&(_, _, ts)| ts);
        let rows: Vec<&EventRow> =
            order.iter().filter_map(|&(e, k, _)| self.buffer[e].events[k].row.as_ref().ok()).collect();

        let stored = match self.partitions.ensure_for(order.iter().map(|&(_, _, ts)| ts)).await {
            Ok(()) => store::write_rows(&self.pool, &rows).await.map_err(|e| e.0),
            Err(error) => Err(error),
        };
        let written = match stored {
            Ok(written) => written,
            Err(error) => {
                tracing::warn!(%error, entries = self.buffer.len(), "PostgreSQL unavailable; batch kept for retry");
                return Ok(Outcome::StoreUnavailable);
            }
        };

        let mut failed: HashMap<(usize, usize), String> = HashMap::new();
        for (e, entry) in self.buffer.iter().enumerate() {
            for (k, event) in entry.events.iter().enumerate() {
                if let Err(reason) = &event.row {
                    failed.insert((e, k), reason.clone());
                }
            }
        }
        failed.extend(written.refused.iter().map(|f| ((order[f.index].0, order[f.index].1), f.reason.clone())));
        let unstored: HashSet<(usize, usize)> = failed.keys().copied().collect();

        let entries = std::mem::take(&mut self.buffer);
        self.buffered_events = 0;
        let verdict = settle::settle(&entries, failed, self.settings.max_deliveries);
        let tally = live_tally(&entries, &order, &written, &unstored, &verdict.ack);
        for (key, reason) in &verdict.retry_later {
            tracing::warn!(event = %key, %reason, "event not stored; its entry stays pending and is retried");
        }
        let retry_later = verdict.retry_later.len();
        self.last_errors.extend(verdict.retry_later);
        let ack: Vec<&str> = verdict.ack.iter().map(String::as_str).collect();
        self.acknowledge(&ack, &verdict.letters, &tally).await?;
        log_batch(&entries, verdict.stored);
        Ok(Outcome::Stored { rows: verdict.stored, retry_later, dead_lettered: verdict.letters.len() })
    }

    /// XACKs settled entries (adding their rows to the live counters) and moves dead letters, in
    /// one MULTI/EXEC; when Redis is out of memory (it refuses every transaction), acknowledges
    /// without counting instead (`oom`), so storing keeps freeing memory.
    async fn acknowledge(
        &mut self,
        settled: &[&str],
        letters: &[DeadLetter],
        tally: &live::Tally,
    ) -> redis::RedisResult<()> {
        match self.acknowledge_counted(settled, letters, tally).await {
            Err(error) if refusal::is_out_of_memory(&error) => {
                if !self.uncounted {
                    tracing::warn!(consumer = %self.name, "Redis is out of memory: stored entries are acknowledged \
                        without live counts (their minutes are rewritten from PostgreSQL once Redis has room)");
                    self.uncounted = true;
                }
                oom::acknowledge_uncounted(&mut self.redis, &self.keys, settled, letters, &tally.minutes()).await?;
                Ok(())
            }
            Ok(()) if self.uncounted && !(settled.is_empty() && letters.is_empty()) => {
                tracing::info!(consumer = %self.name, "Redis has room again: batches are counted live again");
                self.uncounted = false;
                Ok(())
            }
            other => other,
        }
    }

    /// `acknowledge` with the live counts (the usual way).
    async fn acknowledge_counted(
        &mut self,
        settled: &[&str],
        letters: &[DeadLetter],
        tally: &live::Tally,
    ) -> redis::RedisResult<()> {
        if settled.is_empty() && letters.is_empty() {
            return Ok(());
        }
        // Another shard than the first counts before its MULTI (the counters are in another slot).
        let in_flight = if self.keys.counts_with_ack() || tally.is_empty() || settled.is_empty() {
            None
        } else {
            Some(live::ack::count_in_flight(&mut self.redis, &self.keys.live, tally).await?)
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        for letter in letters {
            tracing::error!(entry = %letter.entry_id, request_id = %letter.request_id, reason = %letter.reason,
                deliveries = letter.deliveries, "entry moved to the dead-letter stream");
            dead_letter::queue_move(&mut pipe, &self.keys, letter);
            self.last_errors.remove(&letter.entry_id);
        }
        if self.keys.counts_with_ack() {
            live::queue_ack_and_count(&mut pipe, &self.keys.events, &self.keys.group, &self.keys.live, settled, tally);
            return pipe.query_async(&mut self.redis).await;
        }
        if settled.is_empty() {
            return pipe.query_async(&mut self.redis).await;
        }
        pipe.cmd("XACK").arg(&self.keys.events).arg(&self.keys.group).arg(settled);
        let (acked,): (usize,) = pipe.query_async(&mut self.redis).await?;
        match in_flight {
            Some(token) => {
                live::ack::settle_in_flight(&mut self.redis, &self.keys.live, &token, acked == settled.len()).await
            }
            None => Ok(()),
        }
    }
}

/// The live counts of a stored batch: rows of the entries acknowledged now that this write stored
/// (or that an unacknowledged earlier delivery of the same entry stored), never rows another entry
/// stored, nor rows of an entry left pending (they count when it is acknowledged).
fn live_tally(
    entries: &[Entry],
    order: &[(usize, usize, i64)],
    written: &store::Written,
    unstored: &HashSet<(usize, usize)>,
    acked: &[String],
) -> live::Tally {
    let skip: HashSet<usize> = written.already_stored.iter().copied().collect();
    let acked: HashSet<&str> = acked.iter().map(String::as_str).collect();
    let now = chrono::Utc::now().timestamp();
    let mut tally = live::Tally::default();
    for (position, &(e, k, _)) in order.iter().enumerate() {
        if skip.contains(&position) || unstored.contains(&(e, k)) || !acked.contains(entries[e].id.as_str()) {
            continue;
        }
        if let Ok(row) = &entries[e].events[k].row {
            tally.add(row, now);
        }
    }
    tally
}

fn log_batch(entries: &[Entry], stored: usize) {
    let mut request_ids: Vec<&str> = entries.iter().map(|e| e.request_id.as_str()).collect();
    request_ids.dedup();
    request_ids.truncate(20);
    tracing::debug!(stored, first = %entries[0].id, last = %entries[entries.len() - 1].id, ?request_ids, "batch stored");
}

/// Exponential wait between failed steps: 100 ms doubling to 5 s, cut short by shutdown.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    async fn wait(&mut self, shutdown: &Shutdown) {
        let delay = Duration::from_millis(100 * 2u64.pow(self.failures.min(6))).min(Duration::from_secs(5));
        self.failures += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.cancelled() => {},
        }
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A span per entry that carries a request's trace context (none without traces: no entry has
/// one), its OpenTelemetry parent the span that appended it; they end when dropped.
fn traced_entries(entries: &[Entry]) -> Vec<tracing::Span> {
    entries
        .iter()
        .filter_map(|entry| {
            let trace = entry.trace.as_deref()?;
            let span = tracing::info_span!("stream entry", entry = %entry.id, events = entry.events.len(),
                request_id = %entry.request_id);
            eventmill_jobs::queue::trace::set_parent(&span, trace);
            Some(span)
        })
        .collect()
}
