//! `REVENUE_SUMMARY`: revenue, orders and average order value per day (with day-over-day change),
//! by source, totals, best and worst day. Reads `rollup_daily_summary` and `rollup_daily`; with a
//! profile filter, `rollup_profile_daily` (and raw purchase events for the by-source split, which no
//! rollup keeps per profile).

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use sqlx::PgPool;

use super::{ChartSpec, Report, ReportError, ReportQuery, Table, Value, columns};

/// Every day of the period with its revenue (cents) and orders; days without rollup rows are 0.
const BY_DAY: &str = "SELECT d::date, coalesce(round(s.revenue * 100), 0)::bigint, coalesce(s.orders, 0)::bigint \
     FROM generate_series($1::date, $2::date, interval '1 day') AS d \
     LEFT JOIN rollup_daily_summary s ON s.day = d::date ORDER BY 1";

const BY_DAY_FOR_PROFILES: &str = "SELECT d::date, coalesce(round(sum(p.revenue) * 100), 0)::bigint, \
     coalesce(sum(p.purchases), 0)::bigint \
     FROM generate_series($1::date, $2::date, interval '1 day') AS d \
     LEFT JOIN rollup_profile_daily p ON p.day = d::date AND p.profile_id = ANY($3) GROUP BY 1 ORDER BY 1";

/// Purchases per (day, source).
const BY_DAY_AND_SOURCE: &str = "SELECT day, source, round(sum(revenue) * 100)::bigint, sum(events)::bigint \
     FROM rollup_daily WHERE event_type = 'purchase' AND day BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 1, 2";

/// Raw purchases of the given profiles per (day, source): no rollup keeps source per profile.
const BY_DAY_AND_SOURCE_FOR_PROFILES: &str = "SELECT (ts AT TIME ZONE 'UTC')::date, source, \
     coalesce(round(sum(CASE WHEN jsonb_typeof(properties->'amount') = 'number' \
         THEN (properties->>'amount')::numeric END) * 100), 0)::bigint, count(*) \
     FROM events WHERE event_type = 'purchase' AND ts >= $1::date AND ts < $2::date \
       AND properties->>'profile_id' = ANY($3) GROUP BY 1, 2 ORDER BY 1, 2";

type DayRow = (NaiveDate, i64, i64);
type SourceRow = (NaiveDate, String, i64, i64);

pub async fn build(pool: &PgPool, query: &ReportQuery) -> Result<Report, ReportError> {
    let after_end = query.end + Days::new(1);
    let (days, by_source): (Vec<DayRow>, Vec<SourceRow>) = match &query.profile_ids {
        None => (
            sqlx::query_as(BY_DAY).bind(query.start).bind(query.end).fetch_all(pool).await?,
            sqlx::query_as(BY_DAY_AND_SOURCE).bind(query.start).bind(query.end).fetch_all(pool).await?,
        ),
        Some(ids) => (
            sqlx::query_as(BY_DAY_FOR_PROFILES).bind(query.start).bind(query.end).bind(ids).fetch_all(pool).await?,
            sqlx::query_as(BY_DAY_AND_SOURCE_FOR_PROFILES)
                .bind(query.start)
                .bind(after_end)
                .bind(ids)
                .fetch_all(pool)
                .await?,
        ),
    };
    let mut report = Report::new(query);
    add_kpis(&mut report, &days);
    report.charts.push(chart(&days, &by_source));
    report.tables.push(day_table(&days));
    report.tables.push(source_table(&by_source));
    Ok(report)
}

fn add_kpis(report: &mut Report, days: &[DayRow]) {
    let revenue: i64 = days.iter().map(|d| d.1).sum();
    let orders: i64 = days.iter().map(|d| d.2).sum();
    report.kpi("revenue", "Revenue", Value::Money(revenue));
    report.kpi("orders", "Orders", Value::Int(orders));
    report.kpi("average_order_value", "Average order value", aov(revenue, orders));
    let best = days.iter().max_by_key(|d| (d.1, std::cmp::Reverse(d.0)));
    let worst = days.iter().min_by_key(|d| (d.1, d.0));
    if let (Some(best), Some(worst)) = (best, worst) {
        report.kpi("max_day_revenue", "Best day", Value::Money(best.1));
        report.kpi("min_day_revenue", "Lowest day", Value::Money(worst.1));
        report.notes.push(format!(
            "Best day {} ({}), lowest day {} ({}).",
            best.0,
            Value::Money(best.1).display(),
            worst.0,
            Value::Money(worst.1).display()
        ));
    }
}

/// Average order value in cents, rounded half away from zero; empty without orders.
fn aov(revenue_cents: i64, orders: i64) -> Value {
    if orders == 0 {
        return Value::Empty;
    }
    let rounded = (2 * revenue_cents + orders).div_euclid(2 * orders);
    Value::Money(rounded)
}

fn day_table(days: &[DayRow]) -> Table {
    let mut previous: Option<i64> = None;
    let rows = days
        .iter()
        .map(|&(day, revenue, orders)| {
            let change = match previous {
                Some(prev) => Value::ratio((revenue - prev) as f64, prev as f64),
                None => Value::Empty,
            };
            previous = Some(revenue);
            vec![Value::Date(day), Value::Money(revenue), Value::Int(orders), aov(revenue, orders), change]
        })
        .collect();
    Table {
        key: "revenue_by_day",
        title: "Revenue by day".into(),
        columns: columns(&[
            ("day", "Day"),
            ("revenue", "Revenue"),
            ("orders", "Orders"),
            ("aov", "Avg order value"),
            ("change", "Day-over-day"),
        ]),
        rows,
    }
}

fn source_table(by_source: &[SourceRow]) -> Table {
    let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (_, source, revenue, orders) in by_source {
        let entry = totals.entry(source).or_default();
        entry.0 += revenue;
        entry.1 += orders;
    }
    let all: i64 = totals.values().map(|t| t.0).sum();
    let mut rows: Vec<_> = totals.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    Table {
        key: "revenue_by_source",
        title: "Revenue by source".into(),
        columns: columns(&[
            ("source", "Source"),
            ("revenue", "Revenue"),
            ("orders", "Orders"),
            ("aov", "Avg order value"),
            ("share", "Share of revenue"),
        ]),
        rows: rows
            .into_iter()
            .map(|(source, (revenue, orders))| {
                vec![
                    Value::Text(source.to_owned()),
                    Value::Money(revenue),
                    Value::Int(orders),
                    aov(revenue, orders),
                    Value::ratio(revenue as f64, all as f64),
                ]
            })
            .collect(),
    }
}

/// Daily revenue, one bar per source.
fn chart(days: &[DayRow], by_source: &[SourceRow]) -> ChartSpec {
    let labels: Vec<String> = days.iter().map(|d| d.0.format("%m-%d").to_string()).collect();
    let index: BTreeMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (d.0, i)).collect();
    let mut series: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (day, source, revenue, _) in by_source {
        let values = series.entry(source).or_insert_with(|| vec![0.0; days.len()]);
        if let Some(&i) = index.get(day) {
            values[i] = *revenue as f64 / 100.0;
        }
    }
    if series.is_empty() {
        series.insert("Revenue", days.iter().map(|d| d.1 as f64 / 100.0).collect());
    }
    ChartSpec {
        title: "Daily revenue by source".into(),
        bars: true,
        labels,
        series: series.into_iter().map(|(name, values)| (name.to_owned(), values)).collect(),
    }
}
