//! events -> **export** -> file: raw events of a period, filtered, streamed row by row from
//! PostgreSQL (`sqlx` `fetch`, in `ts` order along the primary key, so no sort and no buffering)
//! into a CSV, JSON or PDF writer (`sink.rs`). Memory stays flat whatever the row count; the PDF
//! alone keeps rows, up to `EVENTMILL_EXPORT_PDF_MAX_ROWS`, and says so when it is capped.
//!
//! Every filter is a bound parameter; nothing from the payload is spliced into SQL.

mod sink;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    deliver::AtomicFile,
    domain::job::{ExportData, ExportDataType, ExportFilters, Format},
};
pub use sink::{Cell, Sink};

/// An export request, checked at the boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportQuery {
    pub data_type: ExportDataType,
    pub format: Format,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub filters: ExportFilters,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid export request: {0}")]
    Invalid(String),
    #[error("database error while exporting: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot write the export file: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot render the export PDF: {0}")]
    Pdf(#[from] crate::report::pdf::PdfError),
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOutcome {
    pub rows: u64,
    /// Rows in the file (smaller than `rows` only for a capped PDF).
    pub rows_written: u64,
    pub bytes: u64,
}

/// One exported event as the query returns it.
#[derive(Debug, sqlx::FromRow)]
struct EventRecord {
    ts: DateTime<Utc>,
    event_id: Uuid,
    event_type: String,
    user_id: Option<String>,
    session_id: Option<String>,
    source: String,
    properties: String,
    amount: Option<String>,
    profile_id: Option<String>,
    category: Option<String>,
    feature: Option<String>,
}

/// `$1..$2` time range, `$3` types to include (NULL = all), `$4` types to exclude, then the
/// filters: `$5` event type, `$6` source, `$7` user, `$8` properties containment.
const SELECT: &str = "SELECT ts, event_id, event_type, user_id, session_id, source, properties::text AS properties, \
       properties->>'amount' AS amount, properties->>'profile_id' AS profile_id, \
       properties->>'category' AS category, properties->>'feature' AS feature \
     FROM events \
     WHERE ts >= $1 AND ts < $2 \
       AND ($3::text[] IS NULL OR event_type = ANY($3)) AND NOT (event_type = ANY($4)) \
       AND ($5::text IS NULL OR event_type = $5) AND ($6::text IS NULL OR source = $6) \
       AND ($7::text IS NULL OR user_id = $7) AND properties @> $8::jsonb \
     ORDER BY ts, event_id";

impl ExportQuery {
    /// Checks the payload: `start <= end`.
    pub fn from_job(job: &ExportData) -> Result<Self, ExportError> {
        if job.start_date > job.end_date {
            return Err(ExportError::Invalid(format!(
                "start_date {} is after end_date {}",
                job.start_date, job.end_date
            )));
        }
        Ok(Self {
            data_type: job.data_type,
            format: job.format,
            start: job.start_date,
            end: job.end_date,
            filters: job.filters.clone(),
        })
    }

    /// Event types included (None = all) and excluded by the data type.
    fn types(&self) -> (Option<Vec<String>>, Vec<String>) {
        let list = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        match self.data_type {
            ExportDataType::Transactions => (Some(list(&["purchase"])), Vec::new()),
            ExportDataType::Costs => (Some(list(&["cost"])), Vec::new()),
            ExportDataType::Engagement => (None, list(&["purchase", "cost"])),
        }
    }
}

/// Human title of an export data type.
pub fn title(data_type: ExportDataType) -> &'static str {
    match data_type {
        ExportDataType::Engagement => "Engagement events export",
        ExportDataType::Transactions => "Transactions export",
        ExportDataType::Costs => "Costs export",
    }
}

/// File-name slug, e.g. `export-transactions`.
pub fn slug(data_type: ExportDataType) -> &'static str {
    match data_type {
        ExportDataType::Engagement => "export-engagement",
        ExportDataType::Transactions => "export-transactions",
        ExportDataType::Costs => "export-costs",
    }
}

/// Rows of the period per the daily rollups (`$1..$2` days; types and filters as in `SELECT`,
/// bar the user and property filters no rollup keeps): a cheap estimate for progress.
const ESTIMATE: &str = "SELECT sum(events)::bigint FROM rollup_daily WHERE day >= $1 AND day <= $2 \
       AND ($3::text[] IS NULL OR event_type = ANY($3)) AND NOT (event_type = ANY($4)) \
       AND ($5::text IS NULL OR event_type = $5) AND ($6::text IS NULL OR source = $6)";

/// How often (in rows) an export reports its progress.
const PROGRESS_EVERY: u64 = 10_000;

/// Streams the matching events into `file` (committed only when everything was written).
/// `progress` gets the share done so far, 0.0..1.0, and the rows written, every
/// `PROGRESS_EVERY` rows (see [`Progress`]).
#[tracing::instrument(skip_all, fields(data_type = ?query.data_type, format = ?query.format))]
pub async fn run(
    pool: &PgPool,
    query: &ExportQuery,
    file: AtomicFile,
    pdf_max_rows: usize,
    progress: &(dyn Fn(f64, u64) + Send + Sync),
) -> Result<ExportOutcome, ExportError> {
    let from = query.start.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let to = (query.end + Days::new(1)).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let (include, exclude) = query.types();
    let properties = serde_json::Value::Object(query.filters.properties.clone());
    let mut sink = Sink::new(query, file, pdf_max_rows)?;
    let mut rows = sqlx::query_as::<_, EventRecord>(SELECT)
        .bind(from)
        .bind(to)
        .bind(include)
        .bind(exclude)
        .bind(&query.filters.event_type)
        .bind(&query.filters.source)
        .bind(&query.filters.user_id)
        .bind(properties)
        .fetch(pool);
    let mut done = Progress::new(pool, query, (from, to)).await;
    while let Some(record) = rows.try_next().await? {
        sink.push(&cells(query.data_type, &record))?;
        if sink.rows() == 1 {
            done.starts_at(record.ts);
        }
        if sink.rows() % PROGRESS_EVERY == 0 {
            progress(done.at(sink.rows(), record.ts), sink.rows());
            // Rows can arrive faster than this task ever waits: let the progress writer run.
            tokio::task::yield_now().await;
        }
    }
    drop(rows);
    sink.finish(query)
}

/// The share of an export done: rows written over the rollups' count of the period's matching
/// rows, or, where that is unknown or already passed (days not rolled up yet, today), how far
/// the rows' times are from the first row's to the end of the period.
struct Progress {
    estimate: Option<u64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Never goes back (when rows outrun the estimate, the time share takes over).
    last: f64,
}

impl Progress {
    async fn new(pool: &PgPool, query: &ExportQuery, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Self {
        let (include, exclude) = query.types();
        let estimate: Option<i64> = sqlx::query_scalar(ESTIMATE)
            .bind(query.start)
            .bind(query.end)
            .bind(include)
            .bind(exclude)
            .bind(&query.filters.event_type)
            .bind(&query.filters.source)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|error| {
                tracing::debug!(%error, "no row estimate for the export's progress");
                None
            });
        Self { estimate: estimate.filter(|&e| e > 0).map(|e| e as u64), from, to, last: 0.0 }
    }

    /// The first row's time: the time share counts from there.
    fn starts_at(&mut self, ts: DateTime<Utc>) {
        self.from = ts;
    }

    /// The share done after `rows` rows, the last one at `ts`.
    fn at(&mut self, rows: u64, ts: DateTime<Utc>) -> f64 {
        let share = match self.estimate {
            Some(estimate) if rows <= estimate => rows as f64 / estimate as f64,
            _ => (ts - self.from).num_seconds() as f64 / (self.to - self.from).num_seconds().max(1) as f64,
        };
        self.last = self.last.max(share.clamp(0.0, 1.0));
        self.last
    }
}

/// Column names of a data type's files.
pub fn columns(data_type: ExportDataType) -> &'static [&'static str] {
    match data_type {
        ExportDataType::Engagement => {
            &["timestamp", "event_id", "event_type", "user_id", "session_id", "source", "properties"]
        }
        ExportDataType::Transactions => {
            &["timestamp", "event_id", "user_id", "session_id", "source", "amount", "profile_id", "properties"]
        }
        ExportDataType::Costs => &["timestamp", "event_id", "source", "category", "feature", "amount", "user_id"],
    }
}

fn cells(data_type: ExportDataType, r: &EventRecord) -> Vec<Cell> {
    let ts = Cell::Text(Some(r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    let id = Cell::Text(Some(r.event_id.to_string()));
    let text = |v: &Option<String>| Cell::Text(v.clone());
    let source = Cell::Text(Some(r.source.clone()));
    match data_type {
        ExportDataType::Engagement => vec![
            ts,
            id,
            Cell::Text(Some(r.event_type.clone())),
            text(&r.user_id),
            text(&r.session_id),
            source,
            Cell::Json(r.properties.clone()),
        ],
        ExportDataType::Transactions => vec![
            ts,
            id,
            text(&r.user_id),
            text(&r.session_id),
            source,
            Cell::Number(r.amount.clone()),
            text(&r.profile_id),
            Cell::Json(r.properties.clone()),
        ],
        ExportDataType::Costs => {
            vec![ts, id, source, text(&r.category), text(&r.feature), Cell::Number(r.amount.clone()), text(&r.user_id)]
        }
    }
}
