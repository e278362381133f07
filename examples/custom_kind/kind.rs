//! A job kind defined outside eventmill: COUNT_EVENTS counts one day's stored events (of one type,
//! optionally) and, with `min_events`, fails (and is retried) until at least that many are stored,
//! e.g. while a backfill is still running. The processor is this file; `registry()` adds it to
//! eventmill's own kinds. Retries, the failed queue, admin, the CLI (`enqueue --file`,
//! `enqueue COUNT_EVENTS date=today`), job files with relative dates and scheduling come with it.

use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use eventmill::{
    processors::{self, Analytics, JobContext},
    queue::{JobError, Processor, QueueSpec, Registry, ResultExt},
    settings::PolicyOverride,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The queue of the example's jobs.
pub const COUNTS_QUEUE: &str = "examples:counts";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountEventsJob {
    /// A UTC day; job files may write `today`, `yesterday`, `-7d`.
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Fewer stored events than this is a (retryable) failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<i64>,
}

pub struct CountEvents;

impl Processor<Analytics> for CountEvents {
    type Payload = CountEventsJob;
    const NAME: &'static str = "COUNT_EVENTS";
    const QUEUE: &'static str = COUNTS_QUEUE;
    const DATE_FIELDS: &'static [&'static str] = &["date"];

    fn policy(&self) -> PolicyOverride {
        PolicyOverride { attempts: Some(2), backoff: Some(Duration::from_millis(100)), ..Default::default() }
    }

    async fn process(&self, ctx: &JobContext, job: CountEventsJob) -> Result<Value, JobError> {
        let start = Utc.from_utc_datetime(&job.date.and_hms_opt(0, 0, 0).expect("midnight exists"));
        ctx.progress(10, format!("counting the events of {}", job.date));
        let events: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR event_type = $3)",
        )
        .bind(start)
        .bind(start + chrono::Duration::days(1))
        .bind(&job.event_type)
        .fetch_one(&ctx.state().pool)
        .await
        .retryable()?;
        ctx.log(format!("{events} event(s) stored on {}", job.date));
        if let Some(min) = job.min_events.filter(|min| events < *min) {
            return Err(JobError::retryable(format!("only {events} of at least {min} events stored so far")));
        }
        Ok(json!({ "date": job.date, "events": events }))
    }
}

/// eventmill's queues and kinds plus the example's.
pub fn registry() -> Registry<Analytics> {
    processors::registry().queue(QueueSpec::new(COUNTS_QUEUE).concurrency(2)).register(CountEvents)
}
