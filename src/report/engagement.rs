//! `ENGAGEMENT_METRICS`: events, unique users, sessions, errors and error rate per day
//! (`rollup_daily_summary`), events per type per day (`rollup_daily`). Distinct users and sessions
//! over the whole period cannot be added up from daily rows, so those two KPIs read raw `events`.

use chrono::{Days, NaiveDate};
use sqlx::PgPool;

use super::{ChartSpec, Report, ReportError, ReportQuery, Table, Value, columns};

const BY_DAY: &str = "SELECT d::date, coalesce(s.events, 0), coalesce(s.unique_users, 0), \
     coalesce(s.sessions, 0), coalesce(s.errors, 0) \
     FROM generate_series($1::date, $2::date, interval '1 day') AS d \
     LEFT JOIN rollup_daily_summary s ON s.day = d::date ORDER BY 1";

const BY_TYPE: &str = "SELECT day, event_type, sum(events)::bigint, sum(errors)::bigint FROM rollup_daily \
     WHERE day BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 1, 2";

/// Distinct users and sessions of the whole period (no rollup can answer this).
const PERIOD_DISTINCT: &str = "SELECT count(DISTINCT user_id), count(DISTINCT session_id) FROM events \
     WHERE ts >= $1::date AND ts < $2::date";

type DayRow = (NaiveDate, i64, i64, i64, i64);

pub async fn build(pool: &PgPool, query: &ReportQuery) -> Result<Report, ReportError> {
    let days: Vec<DayRow> = sqlx::query_as(BY_DAY).bind(query.start).bind(query.end).fetch_all(pool).await?;
    let by_type: Vec<(NaiveDate, String, i64, i64)> =
        sqlx::query_as(BY_TYPE).bind(query.start).bind(query.end).fetch_all(pool).await?;
    let (users, sessions): (i64, i64) =
        sqlx::query_as(PERIOD_DISTINCT).bind(query.start).bind(query.end + Days::new(1)).fetch_one(pool).await?;

    let mut report = Report::new(query);
    let events: i64 = days.iter().map(|d| d.1).sum();
    let errors: i64 = days.iter().map(|d| d.4).sum();
    report.kpi("events", "Events", Value::Int(events));
    report.kpi("unique_users", "Unique users", Value::Int(users));
    report.kpi("sessions", "Sessions", Value::Int(sessions));
    report.kpi("errors", "Errors", Value::Int(errors));
    report.kpi("error_rate", "Error rate", Value::ratio(errors as f64, events as f64));
    let daily_users = if days.is_empty() { 0 } else { days.iter().map(|d| d.2).sum::<i64>() / days.len() as i64 };
    report.kpi("avg_daily_users", "Avg daily users", Value::Int(daily_users));
    report.charts.push(ChartSpec {
        title: "Events, users and sessions per day".into(),
        bars: false,
        labels: days.iter().map(|d| d.0.format("%m-%d").to_string()).collect(),
        series: vec![
            ("Events".into(), days.iter().map(|d| d.1 as f64).collect()),
            ("Unique users".into(), days.iter().map(|d| d.2 as f64).collect()),
            ("Sessions".into(), days.iter().map(|d| d.3 as f64).collect()),
        ],
    });
    report.tables.push(day_table(&days));
    report.tables.push(Table {
        key: "events_by_type",
        title: "Events per type per day".into(),
        columns: columns(&[("day", "Day"), ("event_type", "Event type"), ("events", "Events"), ("errors", "Errors")]),
        rows: by_type
            .into_iter()
            .map(|(day, event_type, events, errors)| {
                vec![Value::Date(day), Value::Text(event_type), Value::Int(events), Value::Int(errors)]
            })
            .collect(),
    });
    Ok(report)
}

fn day_table(days: &[DayRow]) -> Table {
    Table {
        key: "engagement_by_day",
        title: "Engagement by day".into(),
        columns: columns(&[
            ("day", "Day"),
            ("events", "Events"),
            ("unique_users", "Unique users"),
            ("sessions", "Sessions"),
            ("errors", "Errors"),
            ("error_rate", "Error rate"),
        ]),
        rows: days
            .iter()
            .map(|&(day, events, users, sessions, errors)| {
                vec![
                    Value::Date(day),
                    Value::Int(events),
                    Value::Int(users),
                    Value::Int(sessions),
                    Value::Int(errors),
                    Value::ratio(errors as f64, events as f64),
                ]
            })
            .collect(),
    }
}
