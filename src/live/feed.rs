//! The live feed behind the SSE endpoint: one task per process reads the counters once a tick
//! (`EVENTMILL_LIVE_TICK_MS`, default 250 ms: one pipelined Redis round trip) and broadcasts the
//! snapshot to every subscriber. It starts
//! with the first subscriber and stops when the last one leaves; subscribers are bounded.

use std::sync::{Arc, Mutex};

use crate::redis_conn::RedisConn;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use super::{LiveKeys, read};

/// Seconds of history in each snapshot: a late-counted second is corrected by the next messages.
const SECONDS_PER_SNAPSHOT: i64 = 5;

/// The once-a-tick read shared by this process's SSE clients.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisConn,
    keys: LiveKeys,
    sender: Mutex<Option<broadcast::Sender<Arc<String>>>>,
    slots: Arc<Semaphore>,
    tick: std::time::Duration,
}

/// One SSE client's place in the feed; dropping it frees the slot.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<String>>,
    _slot: OwnedSemaphorePermit,
}

impl Feed {
    /// A feed that admits at most `max_subscribers` at once and reads every `tick`.
    pub fn new(redis: RedisConn, keys: LiveKeys, max_subscribers: usize, tick: std::time::Duration) -> Self {
        let slots = Arc::new(Semaphore::new(max_subscribers));
        Self { inner: Arc::new(Inner { redis, keys, sender: Mutex::new(None), slots, tick }) }
    }

    /// Joins the feed, or `None` when every slot is taken.
    pub fn subscribe(&self) -> Option<Subscription> {
        let slot = self.inner.slots.clone().try_acquire_owned().ok()?;
        let mut sender = self.inner.sender.lock().expect("feed lock");
        let receiver = match sender.as_ref() {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(4);
                *sender = Some(tx.clone());
                tokio::spawn(tick(self.inner.clone(), tx));
                rx
            }
        };
        Some(Subscription { receiver, _slot: slot })
    }
}

/// Reads and broadcasts once a tick, aligned on the wall clock (a 1 s tick lands just after each
/// second), until nobody listens.
async fn tick(inner: Arc<Inner>, tx: broadcast::Sender<Arc<String>>) {
    let mut redis = inner.redis.clone();
    let tick_ms = inner.tick.as_millis().max(1) as i64;
    loop {
        let into_tick = chrono::Utc::now().timestamp_millis().rem_euclid(tick_ms);
        tokio::time::sleep(std::time::Duration::from_millis((tick_ms - into_tick + 20) as u64)).await;
        {
            let mut sender = inner.sender.lock().expect("feed lock");
            if tx.receiver_count() == 0 {
                *sender = None;
                return;
            }
        }
        match snapshot(&mut redis, &inner.keys).await {
            Ok(message) => {
                let _ = tx.send(Arc::new(message));
            }
            Err(error) => tracing::warn!(%error, "live feed could not read the counters"),
        }
    }
}

/// `{"t": now, "seconds": [{"t", "cells": [[type, source, events, revenue]...]}...], "active_users"}`.
pub async fn snapshot(redis: &mut RedisConn, keys: &LiveKeys) -> redis::RedisResult<String> {
    let now = chrono::Utc::now().timestamp();
    let first = now - SECONDS_PER_SNAPSHOT + 1;
    let minute = now.div_euclid(60);
    let mut pipe = redis::pipe();
    for sec in first..=now {
        pipe.hgetall(keys.second(sec));
    }
    pipe.cmd("PFCOUNT").arg((minute - 4..=minute).map(|m| keys.users(m)).collect::<Vec<_>>());
    let (seconds, users): (Vec<Vec<(String, i64)>>, u64) = {
        let mut replies: Vec<redis::Value> = pipe.query_async(redis).await?;
        let users = replies.pop().map(redis::from_redis_value).transpose()?.unwrap_or(0);
        let seconds = replies.into_iter().map(redis::from_redis_value).collect::<Result<_, _>>()?;
        (seconds, users)
    };
    let seconds: Vec<serde_json::Value> = (first..=now)
        .zip(seconds)
        .map(|(t, fields)| {
            let cells: Vec<serde_json::Value> = read::parse_bucket(fields)
                .into_iter()
                .map(|((event_type, source), c)| {
                    serde_json::json!([event_type, source, c.events, read::revenue(c.revenue_micros)])
                })
                .collect();
            serde_json::json!({ "t": t, "cells": cells })
        })
        .collect();
    Ok(serde_json::json!({ "t": now, "seconds": seconds, "active_users": users }).to_string())
}
