//! `COST_ANALYSIS`: cost per day, category and feature (`rollup_cost_daily`), totals by category
//! and by feature, and each one's share of the period's total.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::PgPool;

use super::{ChartSpec, Report, ReportError, ReportQuery, Table, Value, columns};

const BY_DAY: &str = "SELECT day, category, feature, round(amount * 100)::bigint, events FROM rollup_cost_daily \
     WHERE day BETWEEN $1 AND $2 ORDER BY day, category, feature";

type Row = (NaiveDate, String, String, i64, i64);

pub async fn build(pool: &PgPool, query: &ReportQuery) -> Result<Report, ReportError> {
    let rows: Vec<Row> = sqlx::query_as(BY_DAY).bind(query.start).bind(query.end).fetch_all(pool).await?;
    let total: i64 = rows.iter().map(|r| r.3).sum();
    let cost_events: i64 = rows.iter().map(|r| r.4).sum();
    let by_category = sum_by(&rows, |r| &r.1);
    let by_feature = sum_by(&rows, |r| &r.2);
    let days = (query.end - query.start).num_days() + 1;

    let mut report = Report::new(query);
    report.kpi("total_cost", "Total cost", Value::Money(total));
    report.kpi("cost_events", "Cost events", Value::Int(cost_events));
    report.kpi("daily_average", "Daily average", Value::Money(total / days.max(1)));
    if let Some((category, amount)) =
        by_category.iter().max_by_key(|(name, amount)| (*amount, std::cmp::Reverse(*name)))
    {
        report.kpi("largest_category", "Largest category", Value::Text(category.to_string()));
        report.notes.push(format!(
            "Largest category: {category} ({}, {} of the total).",
            Value::Money(*amount).display(),
            Value::ratio(*amount as f64, total as f64).display()
        ));
    }
    report.charts.push(chart(&rows, &by_category));
    report.tables.push(detail_table(&rows, total));
    report.tables.push(share_table(
        "cost_by_category",
        "Cost by category",
        ("category", "Category"),
        &by_category,
        total,
    ));
    report.tables.push(share_table("cost_by_feature", "Cost by feature", ("feature", "Feature"), &by_feature, total));
    Ok(report)
}

fn sum_by<'a>(rows: &'a [Row], key: impl Fn(&'a Row) -> &'a String) -> BTreeMap<&'a str, i64> {
    let mut sums = BTreeMap::new();
    for row in rows {
        *sums.entry(key(row).as_str()).or_insert(0) += row.3;
    }
    sums
}

fn detail_table(rows: &[Row], total: i64) -> Table {
    Table {
        key: "cost_by_day",
        title: "Cost by day, category and feature".into(),
        columns: columns(&[
            ("day", "Day"),
            ("category", "Category"),
            ("feature", "Feature"),
            ("amount", "Amount"),
            ("events", "Events"),
            ("share", "Share of total"),
        ]),
        rows: rows
            .iter()
            .map(|(day, category, feature, amount, events)| {
                vec![
                    Value::Date(*day),
                    Value::Text(category.clone()),
                    Value::Text(feature.clone()),
                    Value::Money(*amount),
                    Value::Int(*events),
                    Value::ratio(*amount as f64, total as f64),
                ]
            })
            .collect(),
    }
}

fn share_table(
    key: &'static str,
    title: &str,
    name: (&'static str, &'static str),
    sums: &BTreeMap<&str, i64>,
    total: i64,
) -> Table {
    let mut sorted: Vec<(&str, i64)> = sums.iter().map(|(k, v)| (*k, *v)).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Table {
        key,
        title: title.into(),
        columns: columns(&[name, ("amount", "Amount"), ("share", "Share of total")]),
        rows: sorted
            .into_iter()
            .map(|(k, amount)| {
                vec![Value::Text(k.to_owned()), Value::Money(amount), Value::ratio(amount as f64, total as f64)]
            })
            .collect(),
    }
}

/// Daily cost, one bar per category.
fn chart(rows: &[Row], by_category: &BTreeMap<&str, i64>) -> ChartSpec {
    let mut days: Vec<NaiveDate> = rows.iter().map(|r| r.0).collect();
    days.dedup();
    let series = by_category
        .keys()
        .map(|category| {
            let values = days
                .iter()
                .map(|day| {
                    let cents: i64 = rows.iter().filter(|r| r.0 == *day && r.1 == *category).map(|r| r.3).sum();
                    cents as f64 / 100.0
                })
                .collect();
            (category.to_string(), values)
        })
        .collect();
    ChartSpec {
        title: "Daily cost by category".into(),
        bars: true,
        labels: days.iter().map(|d| d.format("%m-%d").to_string()).collect(),
        series,
    }
}
