//! Query parameters of the analytics API, parsed at the boundary: every bad one is a 400 naming it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::{domain::Name, web::ApiError};

/// A 400 naming `name`.
pub fn bad(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::BadParameter { name: name.to_owned(), reason: reason.into() }
}

/// Parses the raw query string into `T`; an unknown or malformed parameter is a 400 naming it.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or("")).map_err(|e| {
        let message = e.to_string();
        let name = message.split('`').nth(1).unwrap_or("query");
        bad(name, message.clone())
    })
}

/// A time: RFC 3339 or unix milliseconds, in the years 1970 to 9999 (what ingestion accepts, so
/// every stored event can be asked for, and nothing PostgreSQL's timestamps cannot hold reaches it).
pub fn time(name: &'static str, value: Option<&str>, default: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let Some(value) = value else { return Ok(default) };
    let parsed = match value.parse::<i64>() {
        Ok(millis) => {
            Utc.timestamp_millis_opt(millis).single().ok_or_else(|| bad(name, "unix milliseconds out of range"))?
        }
        Err(_) => DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad(name, format!("{value:?} is not an RFC 3339 time or unix milliseconds: {e}")))?,
    };
    if !(1970..=9999).contains(&parsed.year()) {
        return Err(bad(name, format!("{value:?} is outside the years 1970 to 9999")));
    }
    Ok(parsed)
}

/// A `[from, to)` window: `to` after `from`, at most `max` long.
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
    default_span: Duration,
    max: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let now = Utc::now();
    let to = time("to", to, now)?;
    let from = time("from", from, to - default_span)?;
    if from >= to {
        return Err(bad("from", "must be before `to`"));
    }
    if to - from > max {
        return Err(bad("to", format!("the window from `from` to `to` may be at most {}", human(max))));
    }
    Ok((from, to))
}

/// A day `YYYY-MM-DD`.
pub fn day(name: &'static str, value: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    value
        .map(|v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(name, format!("{v:?} is not a day YYYY-MM-DD")))
        })
        .transpose()
}

/// An event type or source filter.
pub fn name(field: &'static str, value: Option<&str>) -> Result<Option<Name>, ApiError> {
    value.map(|v| Name::parse(v).map_err(|reason| bad(field, reason))).transpose()
}

/// A row limit in `1..=max`.
pub fn limit(value: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(value) = value else { return Ok(default) };
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(bad("limit", format!("must be a whole number from 1 to {max}, got {value:?}"))),
    }
}

/// A bucket size of the timeseries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Second,
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or("minute") {
            "second" => Ok(Self::Second),
            "minute" => Ok(Self::Minute),
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            other => Err(bad("interval", format!("must be second, minute, hour or day, got {other:?}"))),
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    /// The longest window asked for at once (about 10,000 buckets at most).
    pub fn max_window(self) -> Duration {
        match self {
            Self::Second => Duration::hours(1),
            Self::Minute => Duration::days(7),
            Self::Hour => Duration::days(400),
            Self::Day => Duration::days(3660),
        }
    }
}

fn human(d: Duration) -> String {
    if d.num_days() >= 1 { format!("{} days", d.num_days()) } else { format!("{} hours", d.num_hours()) }
}
