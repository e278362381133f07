//! `PROFILE_PERFORMANCE`: per profile per day impressions, clicks, CTR, purchases and attributed
//! revenue (`rollup_profile_daily`), and the top profiles of the period by revenue.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::PgPool;

use super::{ChartSpec, Report, ReportError, ReportQuery, Table, Value, columns};

const BY_PROFILE_AND_DAY: &str = "SELECT profile_id, day, impressions, clicks, purchases, \
     round(revenue * 100)::bigint FROM rollup_profile_daily \
     WHERE day BETWEEN $1 AND $2 AND ($3::text[] IS NULL OR profile_id = ANY($3)) ORDER BY profile_id, day";

/// Profiles listed in the "top profiles" table and chart.
const TOP: usize = 10;

type Row = (String, NaiveDate, i64, i64, i64, i64);

/// Impressions, clicks, purchases, revenue (cents).
#[derive(Debug, Default, Clone, Copy)]
struct Totals(i64, i64, i64, i64);

pub async fn build(pool: &PgPool, query: &ReportQuery) -> Result<Report, ReportError> {
    let rows: Vec<Row> = sqlx::query_as(BY_PROFILE_AND_DAY)
        .bind(query.start)
        .bind(query.end)
        .bind(&query.profile_ids)
        .fetch_all(pool)
        .await?;
    let mut per_profile: BTreeMap<&str, Totals> = BTreeMap::new();
    for (profile, _, impressions, clicks, purchases, revenue) in &rows {
        let t = per_profile.entry(profile).or_default();
        *t = Totals(t.0 + impressions, t.1 + clicks, t.2 + purchases, t.3 + revenue);
    }
    let all = per_profile.values().fold(Totals::default(), |a, t| Totals(a.0 + t.0, a.1 + t.1, a.2 + t.2, a.3 + t.3));
    let mut top: Vec<(&str, Totals)> = per_profile.into_iter().collect();
    top.sort_by(|a, b| b.1.3.cmp(&a.1.3).then(a.0.cmp(b.0)));
    top.truncate(TOP);

    let mut report = Report::new(query);
    report.kpi("impressions", "Impressions", Value::Int(all.0));
    report.kpi("clicks", "Clicks", Value::Int(all.1));
    report.kpi("ctr", "CTR", Value::ratio(all.1 as f64, all.0 as f64));
    report.kpi("purchases", "Purchases", Value::Int(all.2));
    report.kpi("revenue", "Attributed revenue", Value::Money(all.3));
    report.charts.push(ChartSpec {
        title: format!("Attributed revenue of the top {} profiles", top.len()),
        bars: true,
        labels: top.iter().map(|(p, _)| p.to_string()).collect(),
        series: vec![("Revenue".into(), top.iter().map(|(_, t)| t.3 as f64 / 100.0).collect())],
    });
    report.tables.push(detail_table(&rows));
    report.tables.push(top_table(&top));
    Ok(report)
}

fn ctr(impressions: i64, clicks: i64) -> Value {
    // A profile without impressions has a CTR of 0, as the golden figures define it.
    if impressions == 0 { Value::Ratio(0.0) } else { Value::ratio(clicks as f64, impressions as f64) }
}

fn detail_table(rows: &[Row]) -> Table {
    Table {
        key: "profile_by_day",
        title: "Profiles by day".into(),
        columns: columns(&[
            ("profile_id", "Profile"),
            ("day", "Day"),
            ("impressions", "Impressions"),
            ("clicks", "Clicks"),
            ("ctr", "CTR"),
            ("purchases", "Purchases"),
            ("revenue", "Revenue"),
        ]),
        rows: rows
            .iter()
            .map(|(profile, day, impressions, clicks, purchases, revenue)| {
                vec![
                    Value::Text(profile.clone()),
                    Value::Date(*day),
                    Value::Int(*impressions),
                    Value::Int(*clicks),
                    ctr(*impressions, *clicks),
                    Value::Int(*purchases),
                    Value::Money(*revenue),
                ]
            })
            .collect(),
    }
}

fn top_table(top: &[(&str, Totals)]) -> Table {
    Table {
        key: "top_profiles",
        title: "Top profiles by revenue".into(),
        columns: columns(&[
            ("rank", "Rank"),
            ("profile_id", "Profile"),
            ("impressions", "Impressions"),
            ("clicks", "Clicks"),
            ("ctr", "CTR"),
            ("purchases", "Purchases"),
            ("revenue", "Revenue"),
        ]),
        rows: top
            .iter()
            .enumerate()
            .map(|(i, (profile, t))| {
                vec![
                    Value::Int(i as i64 + 1),
                    Value::Text(profile.to_string()),
                    Value::Int(t.0),
                    Value::Int(t.1),
                    ctr(t.0, t.1),
                    Value::Int(t.2),
                    Value::Money(t.3),
                ]
            })
            .collect(),
    }
}
