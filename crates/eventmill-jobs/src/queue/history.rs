//! A queue over time: throughput (completed, retried, failed) and latency histograms (wait, run,
//! end to end) per kind, per minute and per hour, as the worker's finish script counts them
//! (`note_finished` in `helpers.lua`). Several processes add into the same hashes (HINCRBY), so
//! the figures are the queue's, whichever process ran the jobs.
//!
//! ```text
//!  finish_and_fetch.lua ──HINCRBY──▶ {p:queue}:<q>:stats:m:<unix minute>  (lives 1 day + 10 min)
//!                        └─HINCRBY──▶ {p:queue}:<q>:stats:h:<unix hour>    (lives 14 days)
//!  Queue::history(window) ◀─HGETALL── the last hour (60 minutes), day (1440 minutes, 10-minute
//!                                      points) or 14 days (336 hours)
//! ```
//!
//! A latency histogram has fixed logarithmic buckets, four per doubling ([`Histogram`]): buckets
//! of two processes or two minutes add up exactly, and a percentile read from them is within one
//! bucket (19 %) of the true value, reported as the bucket's upper bound.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{QueueError, now_ms, store::Queue};

/// A latency histogram: job counts per fixed logarithmic bucket. Bucket 0 holds durations under
/// 1 ms; bucket `b >= 1` holds `[2^((b-1)/4), 2^(b/4))` ms.
///
/// ```
/// use eventmill_jobs::queue::history::Histogram;
///
/// let mut a = Histogram::default();
/// a.record_ms(10.0);
/// a.record_ms(900.0);
/// let mut b = Histogram::default();
/// b.record_ms(12.0);
/// a.merge(&b); // two processes' (or two minutes') figures add up exactly
/// assert_eq!(a.count(), 3);
/// let p50 = a.quantile(0.5).unwrap();
/// assert!((12.0..=14.3).contains(&p50), "{p50}"); // within one bucket, reported as its upper bound
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
}

impl Histogram {
    /// The bucket of a duration (the same arithmetic as the Lua that counts).
    pub fn bucket_of(ms: f64) -> u32 {
        if ms < 1.0 { 0 } else { (4.0 * ms.log2() + 1e-9).floor() as u32 + 1 }
    }

    /// The upper bound of bucket `bucket`, in ms.
    pub fn upper_bound_ms(bucket: u32) -> f64 {
        2f64.powf(f64::from(bucket) / 4.0)
    }

    /// Counts one duration.
    pub fn record_ms(&mut self, ms: f64) {
        self.add(Self::bucket_of(ms), 1);
    }

    /// Adds `count` jobs to `bucket`.
    pub fn add(&mut self, bucket: u32, count: u64) {
        *self.buckets.entry(bucket).or_default() += count;
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.buckets {
            self.add(*bucket, *count);
        }
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The counts per bucket, by bucket.
    pub fn buckets(&self) -> &BTreeMap<u32, u64> {
        &self.buckets
    }

    /// The `q` quantile (0..=1) in ms: the upper bound of the bucket holding it; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(Self::upper_bound_ms(*bucket));
            }
        }
        self.buckets.keys().last().map(|b| Self::upper_bound_ms(*b))
    }

    /// p50, p95 and p99 with the count.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            p50_ms: self.quantile(0.50),
            p95_ms: self.quantile(0.95),
            p99_ms: self.quantile(0.99),
        }
    }
}

/// A histogram's percentiles (ms, upper bounds of their buckets; `None` when nothing was counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Durations counted.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

impl LatencySummary {
    /// `p50 / p95 / p99` for people (`12 ms / 1.2 s / 4 s`), `—` when nothing was counted.
    pub fn text(&self) -> String {
        let show = |ms: Option<f64>| match ms {
            None => "—".to_owned(),
            Some(ms) if ms < 1000.0 => format!("{ms:.0} ms"),
            Some(ms) if ms < 60_000.0 => format!("{:.1} s", ms / 1000.0),
            Some(ms) => format!("{:.1} min", ms / 60_000.0),
        };
        format!("{} / {} / {}", show(self.p50_ms), show(self.p95_ms), show(self.p99_ms))
    }
}

/// Finished attempts counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Throughput {
    /// Jobs completed.
    pub completed: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Jobs failed for good.
    pub failed: u64,
    /// Attempts whose worker stopped responding (lease expired; the job was retried or failed).
    pub lease_expired: u64,
}

impl Throughput {
    fn merge(&mut self, other: &Throughput) {
        self.completed += other.completed;
        self.retried += other.retried;
        self.failed += other.failed;
        self.lease_expired += other.lease_expired;
    }

    /// Failed for good / (completed + failed), in percent (`None` when nothing finished).
    pub fn failure_rate(&self) -> Option<f64> {
        let finished = self.completed + self.failed;
        (finished > 0).then(|| self.failed as f64 * 100.0 / finished as f64)
    }
}

/// One kind's figures over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindStats {
    /// Finished attempts.
    pub throughput: Throughput,
    /// Due (or enqueued) -> started, per attempt.
    pub wait: Histogram,
    /// Started -> finished, per attempt.
    pub run: Histogram,
    /// Created -> completed or failed for good.
    pub end_to_end: Histogram,
}

impl KindStats {
    /// Adds `other`'s figures.
    pub fn merge(&mut self, other: &KindStats) {
        self.throughput.merge(&other.throughput);
        self.wait.merge(&other.wait);
        self.run.merge(&other.run);
        self.end_to_end.merge(&other.end_to_end);
    }
}

/// Every kind's figures over one minute or hour (or their sum), by kind.
pub type PeriodStats = BTreeMap<String, KindStats>;

/// Parses one stats hash (`<kind>:c|r|f|l` and `<kind>:w|x|e:<bucket>` fields).
fn parse_period(fields: HashMap<String, u64>) -> PeriodStats {
    let mut period = PeriodStats::new();
    for (field, count) in fields {
        // Kinds may hold ':'; the letters and the bucket are the last parts.
        let mut parts = field.rsplitn(3, ':');
        let (last, middle, first) = (parts.next(), parts.next(), parts.next());
        let (kind, letter, bucket) = match (first, middle, last) {
            (Some(kind), Some(letter @ ("w" | "x" | "e")), Some(bucket)) if bucket.parse::<u32>().is_ok() => {
                (kind.to_owned(), letter, bucket.parse::<u32>().ok())
            }
            (first, Some(kind_tail), Some(letter)) => {
                let kind = match first {
                    Some(head) => format!("{head}:{kind_tail}"),
                    None => kind_tail.to_owned(),
                };
                (kind, letter, None)
            }
            _ => continue,
        };
        let stats = period.entry(kind).or_default();
        match (letter, bucket) {
            ("c", None) => stats.throughput.completed += count,
            ("r", None) => stats.throughput.retried += count,
            ("f", None) => stats.throughput.failed += count,
            ("l", None) => stats.throughput.lease_expired += count,
            ("w", Some(b)) => stats.wait.add(b, count),
            ("x", Some(b)) => stats.run.add(b, count),
            ("e", Some(b)) => stats.end_to_end.add(b, count),
            _ => {}
        }
    }
    period
}

fn merge_into(total: &mut PeriodStats, period: &PeriodStats) {
    for (kind, stats) in period {
        total.entry(kind.clone()).or_default().merge(stats);
    }
}

/// How far back a history looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Window {
    /// The last 60 minutes, a point per minute.
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours, a point per 10 minutes.
    #[serde(rename = "24h")]
    Day,
    /// The last 14 days, a point per hour.
    #[serde(rename = "14d")]
    TwoWeeks,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::TwoWeeks];

    /// Its name in URLs: `1h`, `24h`, `14d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::TwoWeeks => "14d",
        }
    }

    /// (resolution of the hashes read in ms, hashes per point, points).
    fn layout(self) -> (i64, usize, usize) {
        match self {
            Window::Hour => (60_000, 1, 60),
            Window::Day => (60_000, 10, 144),
            Window::TwoWeeks => (3_600_000, 1, 336),
        }
    }
}

impl std::str::FromStr for Window {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "1h" | "hour" | "60m" => Ok(Window::Hour),
            "24h" | "1d" | "day" => Ok(Window::Day),
            "14d" | "2w" | "336h" => Ok(Window::TwoWeeks),
            other => Err(format!("window {other:?}: expected 1h, 24h or 14d")),
        }
    }
}

/// One point of a history chart: the queue's figures over `step_seconds` from `at`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    /// Where the point's period starts (unix ms).
    pub at: i64,
    /// Every kind's attempts together.
    #[serde(flatten)]
    pub total: Throughput,
    /// 95th percentile of the wait, every kind together (ms).
    pub wait_p95_ms: Option<f64>,
    /// 95th percentile of the run time, every kind together (ms).
    pub run_p95_ms: Option<f64>,
    /// Per kind (kinds with no attempt in the period are left out).
    pub kinds: BTreeMap<String, Throughput>,
}

/// One kind over a whole window.
#[derive(Debug, Clone, Serialize)]
pub struct KindHistory {
    /// The kind's name.
    pub kind: String,
    /// Its attempts over the window.
    #[serde(flatten)]
    pub total: Throughput,
    /// Failed / (completed + failed), in percent.
    pub failure_rate: Option<f64>,
    /// Wait: due (or enqueued) -> started.
    pub wait: LatencySummary,
    /// Run: started -> finished.
    pub run: LatencySummary,
    /// End to end: created -> completed or failed for good.
    pub end_to_end: LatencySummary,
}

/// A queue's throughput and latency over a window (`GET /api/queues/{queue}/history`).
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The queue.
    pub queue: &'static str,
    /// The window asked for.
    pub window: Window,
    /// Each point's period, in seconds.
    pub step_seconds: i64,
    /// The first point's start (unix ms).
    pub from: i64,
    /// The window's end (unix ms).
    pub to: i64,
    /// Oldest first, one per step, empty steps included (zeros).
    pub points: Vec<HistoryPoint>,
    /// Per kind over the whole window, by name.
    pub kinds: Vec<KindHistory>,
    /// Every kind over the whole window.
    #[serde(flatten)]
    pub total: Throughput,
    /// Every kind's wait over the window.
    pub wait: LatencySummary,
    /// Every kind's run time over the window.
    pub run: LatencySummary,
    /// Every kind's end-to-end time over the window.
    pub end_to_end: LatencySummary,
}

fn all_kinds(period: &PeriodStats) -> KindStats {
    let mut all = KindStats::default();
    for stats in period.values() {
        all.merge(stats);
    }
    all
}

/// The board's view of a queue over time.
impl Queue {
    /// The stats hashes of resolution `step_ms` (60 000: minutes, 3 600 000: hours) whose periods
    /// start at `first`, `first + step_ms`, ... (`count` of them), parsed, oldest first.
    pub async fn stats_periods(&self, step_ms: i64, first: i64, count: usize) -> Result<Vec<PeriodStats>, QueueError> {
        let mut pipe = redis::pipe();
        for i in 0..count as i64 {
            pipe.hgetall(self.keys.stats(step_ms, first + i * step_ms));
        }
        let replies: Vec<HashMap<String, u64>> = pipe.query_async(&mut self.redis.clone()).await?;
        Ok(replies.into_iter().map(parse_period).collect())
    }

    /// Every kind's figures over the last `minutes` minutes (the current one included), summed.
    pub async fn recent_stats(&self, minutes: usize) -> Result<PeriodStats, QueueError> {
        let this_minute = now_ms().div_euclid(60_000) * 60_000;
        let first = this_minute - (minutes.max(1) as i64 - 1) * 60_000;
        let mut total = PeriodStats::new();
        for chunk_start in (0..minutes.max(1)).step_by(240) {
            let count = (minutes.max(1) - chunk_start).min(240);
            for period in self.stats_periods(60_000, first + chunk_start as i64 * 60_000, count).await? {
                merge_into(&mut total, &period);
            }
        }
        Ok(total)
    }

    /// The queue's throughput and latency over `window`, ending now.
    pub async fn history(&self, window: Window) -> Result<History, QueueError> {
        let now = now_ms();
        let (resolution, per_point, points) = window.layout();
        let step = resolution * per_point as i64;
        let last_start = now.div_euclid(resolution) * resolution;
        let hashes = per_point * points;
        let first = last_start - (hashes as i64 - 1) * resolution;
        let mut periods = Vec::with_capacity(hashes);
        for chunk_start in (0..hashes).step_by(240) {
            let count = (hashes - chunk_start).min(240);
            periods.extend(self.stats_periods(resolution, first + chunk_start as i64 * resolution, count).await?);
        }
        let mut window_total = PeriodStats::new();
        let mut out = Vec::with_capacity(points);
        for (i, group) in periods.chunks(per_point).enumerate() {
            let mut point = PeriodStats::new();
            for period in group {
                merge_into(&mut point, period);
            }
            merge_into(&mut window_total, &point);
            let all = all_kinds(&point);
            out.push(HistoryPoint {
                at: first + i as i64 * step,
                total: all.throughput,
                wait_p95_ms: all.wait.quantile(0.95),
                run_p95_ms: all.run.quantile(0.95),
                kinds: point.into_iter().map(|(kind, stats)| (kind, stats.throughput)).collect(),
            });
        }
        let all = all_kinds(&window_total);
        let kinds = window_total
            .into_iter()
            .map(|(kind, stats)| KindHistory {
                kind,
                total: stats.throughput,
                failure_rate: stats.throughput.failure_rate(),
                wait: stats.wait.summary(),
                run: stats.run.summary(),
                end_to_end: stats.end_to_end.summary(),
            })
            .collect();
        Ok(History {
            queue: self.name,
            window,
            step_seconds: step / 1000,
            from: first,
            to: now,
            points: out,
            kinds,
            total: all.throughput,
            wait: all.wait.summary(),
            run: all.run.summary(),
            end_to_end: all.end_to_end.summary(),
        })
    }

    /// How long the next job in line has been waiting (ms since it became due), `None` when
    /// nothing waits: the overview's "oldest waiting" (jobs of equal priority run oldest first).
    pub async fn oldest_waiting_ms(&self) -> Result<Option<i64>, QueueError> {
        let mut redis = self.redis.clone();
        let (first, _) = self.waiting_page(0, 1).await?;
        let Some(id) = first.first() else { return Ok(None) };
        let times: (Option<i64>, Option<i64>) =
            redis::cmd("HMGET").arg(self.keys.job(id)).arg("created_at").arg("run_at").query_async(&mut redis).await?;
        let due = match times {
            (Some(created), Some(run_at)) => created.max(run_at),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => return Ok(None),
        };
        Ok(Some((now_ms() - due).max(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_four_per_doubling_and_percentiles_stay_within_one() {
        assert_eq!(Histogram::bucket_of(0.5), 0);
        assert_eq!(Histogram::bucket_of(1.0), 1);
        assert_eq!(Histogram::bucket_of(2.0), 5);
        assert_eq!(Histogram::bucket_of(1000.0), 40);
        for ms in [1.5, 7.0, 250.0, 12_345.0, 3_600_000.0] {
            let bound = Histogram::upper_bound_ms(Histogram::bucket_of(ms));
            assert!(bound > ms && bound <= ms * 2f64.powf(0.25) + 1e-6, "{ms} -> {bound}");
        }
    }

    #[test]
    fn a_stats_hash_parses_into_kinds_with_colons() {
        let fields = HashMap::from([
            ("A:c".to_owned(), 3),
            ("A:f".to_owned(), 1),
            ("ns:B:l".to_owned(), 1),
            ("A:w:5".to_owned(), 4),
            ("ns:B:r".to_owned(), 2),
            ("ns:B:x:40".to_owned(), 2),
        ]);
        let period = parse_period(fields);
        assert_eq!(period["A"].throughput, Throughput { completed: 3, retried: 0, failed: 1, lease_expired: 0 });
        assert_eq!(period["A"].wait.count(), 4);
        assert_eq!(period["ns:B"].throughput.retried, 2);
        assert_eq!(period["ns:B"].throughput.lease_expired, 1);
        assert_eq!(period["ns:B"].run.buckets()[&40], 2);
    }
}
