//! Cron expressions and their ticks. Accepts standard 5-field crontab (`m h dom mon dow`) and a
//! 6-field form with seconds first; day-of-week numbers follow crontab in both (0 or 7 = Sunday,
//! 1 = Monday; names work too), and are rewritten as names for the `cron` crate, which numbers
//! 1 = Sunday (shared/notes/apalis-1.0.md item 9).
//!
//! Ticks are computed in the schedule's IANA timezone on wall-clock times, so DST runs each
//! schedule once: a time that occurs twice (autumn) fires at its first occurrence only; a time
//! skipped by the spring change fires right after the gap.

use std::str::FromStr;

use apalis_cron::Tick;
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// When a schedule ticks: a checked cron expression in a timezone, or a fixed interval
/// (`every 30s`), optionally only between a start and an end time.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// As written: the cron expression, or `every 30s`.
    pub expression: String,
    /// Ticks are computed in this timezone (DST included).
    pub timezone: Tz,
    rule: Rule,
    /// No tick before this instant.
    pub start: Option<DateTime<Utc>>,
    /// No tick after this instant.
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
enum Rule {
    Cron(Box<cron::Schedule>),
    /// Ticks at `anchor + n * interval` (the start time, else the Unix epoch): every scheduler
    /// computes the same instants, so each tick's job key is the same everywhere.
    Every {
        interval: chrono::Duration,
        anchor: DateTime<Utc>,
    },
}

impl CronSchedule {
    /// Parses a 5- or 6-field cron expression (an error names what is wrong).
    pub fn parse(expression: &str, timezone: Tz) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let mut six: Vec<String> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).map(str::to_owned).collect(),
            6 => fields.iter().map(|f| (*f).to_owned()).collect(),
            n => {
                return Err(format!(
                    "cron {expression:?} has {n} fields: expected 5 (m h dom mon dow) or 6 (s m h dom mon dow)"
                ));
            }
        };
        six[5] = day_of_week(&six[5]).map_err(|e| format!("cron {expression:?}: {e}"))?;
        let cron = cron::Schedule::from_str(&six.join(" ")).map_err(|e| format!("cron {expression:?}: {e}"))?;
        Ok(Self {
            expression: expression.to_owned(),
            timezone,
            rule: Rule::Cron(Box::new(cron)),
            start: None,
            end: None,
        })
    }

    /// Ticks every `interval` (whole seconds, at least 1 s), at the start time plus a multiple of
    /// it, or without a start time at multiples of it since the Unix epoch (`every 1h` ticks on
    /// the hour, UTC).
    pub fn every(interval: std::time::Duration, timezone: Tz) -> Result<Self, String> {
        if interval.as_secs() == 0 || interval.subsec_nanos() != 0 {
            return Err(format!(
                "every {}: the interval must be whole seconds, at least 1s (e.g. \"30s\", \"5m\")",
                humantime::format_duration(interval)
            ));
        }
        let interval = chrono::Duration::seconds(interval.as_secs() as i64);
        Ok(Self {
            expression: format!("every {}", humantime::format_duration(interval.to_std().unwrap_or_default())),
            timezone,
            rule: Rule::Every { interval, anchor: DateTime::UNIX_EPOCH },
            start: None,
            end: None,
        })
    }

    /// Only ticks in `[start, end]` (either bound optional). An interval counts from `start`.
    pub fn between(mut self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<Self, String> {
        if let (Some(s), Some(e)) = (start, end)
            && e <= s
        {
            return Err(format!("the end time {e} is not after the start time {s}"));
        }
        if let (Rule::Every { anchor, .. }, Some(start)) = (&mut self.rule, start) {
            *anchor = start;
        }
        self.start = start;
        self.end = end;
        Ok(self)
    }

    /// The interval of an `every` schedule (`None` for cron).
    pub fn interval(&self) -> Option<std::time::Duration> {
        match &self.rule {
            Rule::Every { interval, .. } => interval.to_std().ok(),
            Rule::Cron(_) => None,
        }
    }

    /// The first tick strictly after `after` (within the start and end times).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = match self.start {
            Some(start) if start > after => start - chrono::Duration::milliseconds(1),
            _ => after,
        };
        let next = self.rule_next_after(after)?;
        self.end.is_none_or(|end| next <= end).then_some(next)
    }

    fn rule_next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = match &self.rule {
            Rule::Cron(cron) => cron,
            Rule::Every { interval, anchor } => {
                if after < *anchor {
                    return Some(*anchor);
                }
                let step = interval.num_milliseconds();
                let n = (after - *anchor).num_milliseconds() / step + 1;
                return Some(*anchor + chrono::Duration::milliseconds(n * step));
            }
        };
        let local = after.with_timezone(&self.timezone).naive_local();
        // Start an hour back so a candidate in an autumn overlap is not missed, then skip to > after.
        let start = (local - chrono::Duration::hours(2)).and_utc();
        cron.after(&start).take(100_000).find_map(|candidate| {
            let instant = self.instant(candidate.naive_utc())?;
            (instant > after).then_some(instant)
        })
    }

    /// The ticks in `(after, until]`, at most `limit`.
    pub fn ticks_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut ticks = Vec::new();
        let mut cursor = after;
        while ticks.len() < limit {
            match self.next_after(cursor) {
                Some(tick) if tick <= until => {
                    ticks.push(tick);
                    cursor = tick;
                }
                _ => break,
            }
        }
        ticks
    }

    /// The latest tick in `(after, until]`, if any (walks from `after`, bounded).
    pub fn last_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Rule::Every { interval, anchor } = &self.rule {
            // Arithmetic, not a walk: a 1 s interval after a week down is 600,000 ticks.
            let until = self.end.map_or(until, |end| end.min(until));
            let first = self.next_after(after)?;
            if first > until {
                return None;
            }
            let step = interval.num_milliseconds();
            let n = (until - *anchor).num_milliseconds().div_euclid(step);
            return Some((*anchor + chrono::Duration::milliseconds(n * step)).max(first));
        }
        let mut cursor = after;
        let mut last = None;
        for _ in 0..1_000_000 {
            match self.next_after(cursor) {
                Some(tick) if tick <= until => {
                    last = Some(tick);
                    cursor = tick;
                }
                _ => break,
            }
        }
        last
    }

    /// A wall-clock time's instant: the first of two in an overlap; right after a gap.
    fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.timezone.from_local_datetime(&wall) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => (1..=24 * 60).find_map(|minutes| {
                let later = wall + chrono::Duration::minutes(minutes);
                self.timezone.from_local_datetime(&later).earliest().map(|t| t.with_timezone(&Utc))
            }),
        }
    }
}

/// apalis-cron asks this for the next tick to sleep until.
impl apalis_cron::Schedule<Tz> for CronSchedule {
    fn next_tick(&mut self, _: &Tz) -> Option<Tick<Tz>> {
        self.next_after(Utc::now()).map(|t| Tick::new(t.timestamp() as u64))
    }
}

/// Rewrites a crontab day-of-week field (numbers 0-7, names, ranges, lists, steps) as a list of names.
fn day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<usize>().map_err(|_| format!("bad day-of-week step in {item:?}"))?),
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None if step > 1 => (day(r)?, 6),
                None => (day(r)?, day(r)?),
            },
        };
        let to = if to < from { to + 7 } else { to }; // FRI-SUN wraps (7 = Sunday)
        for d in (from..=to).step_by(step.max(1)) {
            days[d % 7] = true;
        }
    }
    Ok(DAYS.iter().zip(days).filter(|(_, on)| *on).map(|(name, _)| *name).collect::<Vec<_>>().join(","))
}

fn day(text: &str) -> Result<usize, String> {
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 { Ok(n % 7) } else { Err(format!("day of week {n} is not 0-7")) };
    }
    let upper = text.to_ascii_uppercase();
    DAYS.iter().position(|d| upper.starts_with(d)).ok_or_else(|| format!("unknown day of week {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crontab_day_numbers_mean_what_they_mean_in_crontab() {
        assert_eq!(day_of_week("1").unwrap(), "MON");
        assert_eq!(day_of_week("0,7").unwrap(), "SUN");
        assert_eq!(day_of_week("1-5").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(day_of_week("fri-sun").unwrap(), "SUN,FRI,SAT");
        assert!(day_of_week("8").is_err());
    }

    #[test]
    fn five_and_six_field_forms_are_accepted_and_others_rejected() {
        assert!(CronSchedule::parse("5 * * * *", Tz::UTC).is_ok());
        assert!(CronSchedule::parse("*/10 5 * * * *", Tz::UTC).is_ok());
        assert!(CronSchedule::parse("5 * * *", Tz::UTC).unwrap_err().contains("4 fields"));
        assert!(CronSchedule::parse("61 * * * *", Tz::UTC).is_err());
    }

    #[test]
    fn an_interval_ticks_at_multiples_from_its_start_and_stops_at_its_end() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let plain = CronSchedule::every(std::time::Duration::from_secs(30), Tz::UTC).unwrap();
        assert_eq!(plain.expression, "every 30s");
        assert_eq!(plain.next_after(at("2026-01-01T00:00:10Z")), Some(at("2026-01-01T00:00:30Z")));
        assert_eq!(plain.next_after(at("2026-01-01T00:00:30Z")), Some(at("2026-01-01T00:01:00Z")));
        let window = plain.between(Some(at("2026-01-01T00:00:05Z")), Some(at("2026-01-01T00:01:10Z"))).unwrap();
        let ticks = window.ticks_between(at("2025-12-31T00:00:00Z"), at("2026-01-02T00:00:00Z"), 10);
        assert_eq!(ticks, [at("2026-01-01T00:00:05Z"), at("2026-01-01T00:00:35Z"), at("2026-01-01T00:01:05Z")]);
        assert_eq!(window.last_between(at("2025-12-31T00:00:00Z"), at("2026-01-02T00:00:00Z")), Some(ticks[2]));
        assert_eq!(window.last_between(at("2026-01-01T00:00:06Z"), at("2026-01-01T00:00:40Z")), Some(ticks[1]));
        assert_eq!(window.last_between(at("2026-01-01T00:00:06Z"), at("2026-01-01T00:00:20Z")), None);
        assert!(CronSchedule::every(std::time::Duration::from_millis(1500), Tz::UTC).is_err());
        let cron = CronSchedule::parse("0 * * * *", Tz::UTC).unwrap();
        let late = cron.between(Some(at("2026-01-01T05:30:00Z")), None).unwrap();
        assert_eq!(late.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T06:00:00Z")));
    }

    #[test]
    fn an_autumn_overlap_fires_once_and_a_spring_gap_fires_right_after_it() {
        let berlin = CronSchedule::parse("30 2 * * *", chrono_tz::Europe::Berlin).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let autumn = berlin.ticks_between(at("2026-10-24T12:00:00Z"), at("2026-10-26T12:00:00Z"), 10);
        assert_eq!(autumn, [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")]);
        let spring = berlin.ticks_between(at("2026-03-28T12:00:00Z"), at("2026-03-30T12:00:00Z"), 10);
        assert_eq!(spring, [at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")]);
    }
}
