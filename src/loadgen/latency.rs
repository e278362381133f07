//! `loadgen --open-loop`: latency under a fixed offered rate. Requests of `--batch` events leave
//! on a fixed schedule whatever the answers (each on its own task), and each one's latency is
//! counted from its scheduled departure, so a slow server cannot hide its backlog by slowing the
//! client down (no coordinated omission).

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;

use super::{Generator, Intensity};
use crate::shutdown::Shutdown;

/// What one request got.
struct Sample {
    latency: Duration,
    accepted: bool,
}

/// Sends at `rate` events/s in requests of `batch` for `duration`, then prints the latency percentiles.
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    generator: &mut Generator,
    (rate, batch, duration): (u64, usize, Duration),
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    anyhow::ensure!(rate > 0, "--open-loop needs a --rate above 0");
    let interval = Duration::from_secs_f64(batch as f64 / rate as f64);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut body = generator.bulk_body(batch, Utc::now(), Intensity { rate: 1.0, errors: 1.0 });
    for i in 0u32.. {
        let scheduled = start + interval * i;
        if scheduled >= start + duration || shutdown.is_cancelled() {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let mut request = client.post(url).header("content-type", "application/json").body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        tasks.spawn(async move {
            let accepted = matches!(request.send().await, Ok(r) if r.status().as_u16() == 202);
            Sample { latency: scheduled.elapsed(), accepted }
        });
        // The next body is made while this request is in flight, not on the clock of the next one.
        body = generator.bulk_body(batch, Utc::now(), Intensity { rate: 1.0, errors: 1.0 });
    }
    let mut samples = Vec::new();
    while let Some(sample) = tasks.join_next().await {
        samples.push(sample?);
    }
    print_summary(&samples, batch, start.elapsed());
    Ok(())
}

fn print_summary(samples: &[Sample], batch: usize, elapsed: Duration) {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.latency.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    let refused = samples.iter().filter(|s| !s.accepted).count();
    eprintln!(
        "loadgen open-loop: {} requests of {batch} events in {:.1}s; latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms; not accepted {refused}",
        samples.len(),
        elapsed.as_secs_f64(),
        pick(0.50),
        pick(0.95),
        pick(0.99),
        pick(1.0),
    );
}
