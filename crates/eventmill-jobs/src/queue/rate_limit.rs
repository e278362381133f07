//! A queue's rate limit: at most `max` jobs started per `per`, counted in Redis by the fetch
//! script, so it holds across every worker process of the queue.

use std::{fmt, str::FromStr, time::Duration};

/// `max` jobs per `per` (a fixed window that starts with its first claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Jobs started at most per window.
    pub max: u32,
    /// The window.
    pub per: Duration,
}

impl RateLimit {
    /// `max` jobs per `per`.
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }

    /// The variable that overrides queue `queue`'s limit: `<prefix>_QUEUE_RATE_LIMIT_` and the
    /// name upper-cased with every other character than a letter or digit as `_`
    /// (`analytics:reports` -> `EVENTMILL_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS`).
    pub fn variable(prefix: &str, queue: &str) -> String {
        let name: String =
            queue.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("{prefix}_QUEUE_RATE_LIMIT_{name}")
    }
}

/// `100/1s`, `5/250ms`, `1000/1m`.
impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max, humantime::format_duration(self.per))
    }
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a rate limit: expected jobs/duration, e.g. 100/1s or 10/1m");
        let (max, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| bad())?;
        if max == 0 || per.is_zero() {
            return Err(format!("{s:?}: a rate limit needs at least 1 job per a non-zero duration"));
        }
        Ok(Self { max, per })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_reads_as_jobs_per_duration_and_prints_back() {
        let limit: RateLimit = "100/1s".parse().unwrap();
        assert_eq!(limit, RateLimit::new(100, Duration::from_secs(1)));
        assert_eq!(limit.to_string(), "100/1s");
        assert!("0/1s".parse::<RateLimit>().is_err());
        assert!("10".parse::<RateLimit>().unwrap_err().contains("jobs/duration"));
    }

    #[test]
    fn the_variable_names_the_queue_in_capitals() {
        assert_eq!(
            RateLimit::variable("EVENTMILL", "analytics:reports"),
            "EVENTMILL_QUEUE_RATE_LIMIT_ANALYTICS_REPORTS"
        );
    }
}
