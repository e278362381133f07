//! `eventmill loadgen`: drives a running eventmill with realistic traffic at a target rate, as a
//! well-behaved client (bulk requests, retries of 429/503 with the same event ids), and with
//! `--verify` waits until every accepted event is committed in PostgreSQL and reports the
//! sustained HTTP-to-row rate and the loss (which must be zero).

mod latency;
mod traffic;
mod verify;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use rand::{SeedableRng, rngs::SmallRng};
use tokio::sync::Semaphore;

pub use traffic::{Generator, Intensity, Scenario};

use crate::{settings::Settings, shutdown::Shutdown};

/// Options of `eventmill loadgen`.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL of eventmill (default: http:// + EVENTMILL_HTTP_ADDR).
    #[arg(long)]
    pub url: Option<String>,
    /// Events per second at the baseline; 0 sends as fast as the server accepts.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// How long to send: e.g. 30s, 5m, 1h, or "forever".
    #[arg(long, default_value = "60s", value_parser = parse_run_length)]
    pub duration: RunLength,
    /// Events per bulk request (at most; low rates send smaller batches more often).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = Scenario::Steady)]
    pub scenario: Scenario,
    /// Ingest key, when the server requires one.
    #[arg(long, env = "EVENTMILL_INGEST_KEY")]
    pub key: Option<String>,
    /// Distinct users in the traffic.
    #[arg(long, default_value_t = 5000)]
    pub users: u32,
    /// Wait until every accepted event is in PostgreSQL, then report the sustained rate and loss.
    #[arg(long)]
    pub verify: bool,
    /// Measure latency at a fixed offered rate: `--batch`-event requests leave on schedule
    /// whatever the answers, timed from their scheduled departure; prints p50/p95/p99.
    #[arg(long, conflicts_with = "verify")]
    pub open_loop: bool,
}

/// How long a run lasts; `None` is forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLength(pub Option<Duration>);

fn parse_run_length(text: &str) -> Result<RunLength, String> {
    if text == "forever" {
        return Ok(RunLength(None));
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s, 5m, 1h or forever"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("unknown unit {unit:?}: use s, m or h")),
    };
    Ok(RunLength(Some(Duration::from_secs(seconds))))
}

/// Counters shared by the request tasks.
#[derive(Default)]
struct Stats {
    generated: AtomicU64,
    accepted: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    /// 503 answers (Redis unreachable or too slow), each re-sent.
    unavailable: AtomicU64,
    /// 429 answers (the stream's backlog is full), each re-sent.
    throttled: AtomicU64,
}

/// Runs the load until the duration ends or shutdown.
pub async fn run(args: LoadgenArgs, settings: &Settings, shutdown: Shutdown) -> anyhow::Result<()> {
    let base = args.url.clone().unwrap_or_else(|| format!("http://{}", settings.http_addr));
    let url = format!("{}/v1/events/bulk", base.trim_end_matches('/'));
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency.max(1)).build()?;
    let run_tag = args.verify.then(|| format!("{:08x}", rand::random::<u32>()));
    let mut generator = Generator::new(SmallRng::from_os_rng(), args.users, run_tag.clone());
    let stats = Arc::new(Stats::default());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started_at = Utc::now();
    let start = Instant::now();
    if args.open_loop {
        let duration = args.duration.0.unwrap_or(Duration::from_secs(60));
        let params = (args.rate, args.batch, duration);
        return latency::run(&client, &url, args.key.as_deref(), &mut generator, params, &shutdown).await;
    }
    let mut budget = 0.0f64;
    let mut last = start;
    let mut last_report = start;
    eprintln!(
        "loadgen: {:?} traffic at {} events/s to {url}",
        args.scenario,
        if args.rate == 0 { "max".to_owned() } else { args.rate.to_string() }
    );

    while !shutdown.is_cancelled() && args.duration.0.is_none_or(|d| start.elapsed() < d) {
        let progress = match args.duration.0 {
            Some(d) => start.elapsed().as_secs_f64() / d.as_secs_f64(),
            None => (start.elapsed().as_secs_f64() / 600.0).fract(), // forever: a ten-minute cycle
        };
        let intensity = args.scenario.intensity(progress);
        let now = Instant::now();
        let batch = if args.rate == 0 {
            args.batch
        } else {
            let rate = args.rate as f64 * intensity.rate;
            budget += rate * (now - last).as_secs_f64();
            last = now;
            let size = args.batch.min((rate / 20.0).ceil() as usize).max(1);
            if budget < size as f64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            budget -= size as f64;
            size
        };
        let permit = permits.clone().acquire_owned().await?;
        let body = generator.bulk_body(batch, Utc::now(), intensity);
        stats.generated.fetch_add(batch as u64, Ordering::Relaxed);
        let (client, url, key, task_stats) = (client.clone(), url.clone(), args.key.clone(), stats.clone());
        tokio::spawn(async move {
            send(&client, &url, key.as_deref(), body, batch as u64, &task_stats).await;
            drop(permit);
        });
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            report(&stats, start.elapsed());
        }
    }
    let _all_done = permits.acquire_many(args.concurrency.max(1) as u32).await?;
    let sending = start.elapsed();
    report(&stats, sending);
    if let Some(tag) = run_tag {
        let accepted = stats.accepted.load(Ordering::Relaxed);
        verify::wait_until_stored(settings, &tag, accepted, started_at, start).await?;
    }
    Ok(())
}

fn report(stats: &Stats, elapsed: Duration) {
    let accepted = stats.accepted.load(Ordering::Relaxed);
    eprintln!(
        "loadgen: {:.0}s  generated {}  accepted {} ({:.0}/s)  retried {}  rejected {}  503 answers {}  429 answers {}",
        elapsed.as_secs_f64(),
        stats.generated.load(Ordering::Relaxed),
        accepted,
        accepted as f64 / elapsed.as_secs_f64().max(0.001),
        stats.retried.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
        stats.unavailable.load(Ordering::Relaxed),
        stats.throttled.load(Ordering::Relaxed),
    );
}

/// Sends one bulk request, re-sending the same body (same event ids) on 429, 503 and network
/// errors, as a careful client would.
async fn send(client: &reqwest::Client, url: &str, key: Option<&str>, body: String, events: u64, stats: &Stats) {
    for attempt in 0..20u32 {
        let mut request = client.post(url).header("content-type", "application/json").body(body.clone());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let wait = match request.send().await {
            Ok(response) if response.status().as_u16() == 202 => {
                stats.accepted.fetch_add(events, Ordering::Relaxed);
                return;
            }
            Ok(response) if response.status().as_u16() == 503 => {
                stats.unavailable.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(200)
            }
            Ok(response) if response.status().as_u16() == 429 => {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
                Duration::from_millis(200)
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                eprintln!("loadgen: request rejected with {status}: {}", text.chars().take(300).collect::<String>());
                stats.rejected.fetch_add(events, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                if attempt == 0 {
                    eprintln!("loadgen: {error}; retrying");
                }
                Duration::from_millis(500)
            }
        };
        stats.retried.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }
    eprintln!("loadgen: gave up on a batch of {events} events after 20 attempts");
    stats.rejected.fetch_add(events, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_parse() {
        assert_eq!(parse_run_length("90s").unwrap().0, Some(Duration::from_secs(90)));
        assert_eq!(parse_run_length("2m").unwrap().0, Some(Duration::from_secs(120)));
        assert_eq!(parse_run_length("forever").unwrap().0, None);
        assert!(parse_run_length("soon").is_err());
    }
}
