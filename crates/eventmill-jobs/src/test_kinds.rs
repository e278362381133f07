//! Kinds for the crate's unit tests: the shapes of a rollup, an hourly window and an export
//! (payloads are free-form objects; only the relative fields matter here).

use serde_json::{Map, Value};

use crate::{JobContext, JobError, Processor, QueueSpec, Registry};

macro_rules! kind {
    ($type:ident, $name:literal, $queue:literal, dates: $dates:expr, times: $times:expr) => {
        pub(crate) struct $type;

        impl Processor<()> for $type {
            type Payload = Map<String, Value>;
            const NAME: &'static str = $name;
            const QUEUE: &'static str = $queue;
            const DATE_FIELDS: &'static [&'static str] = $dates;
            const TIME_FIELDS: &'static [&'static str] = $times;

            async fn process(&self, _: &JobContext<()>, payload: Self::Payload) -> Result<Value, JobError> {
                Ok(Value::Object(payload))
            }
        }
    };
}

kind!(Daily, "DAILY_ROLLUP", "rollup", dates: &["date"], times: &[]);
kind!(Hourly, "HOURLY_ROLLUP", "rollup", dates: &[], times: &["start_time", "end_time"]);
kind!(Export, "EXPORT_DATA", "reports", dates: &["start_date", "end_date"], times: &[]);

/// Two queues and three kinds.
pub(crate) fn registry() -> Registry<()> {
    Registry::new()
        .queue(QueueSpec::new("rollup"))
        .queue(QueueSpec::new("reports"))
        .register(Daily)
        .register(Hourly)
        .register(Export)
}
