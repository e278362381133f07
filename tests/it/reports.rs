//! GENERATE_REPORT: every report type in CSV, JSON and PDF against the golden figures that
//! `tests/fixtures/make_golden.py` computed independently from the same events.

use std::path::PathBuf;

use chrono::NaiveDate;
use eventmill::{
    domain::job::{Format, GenerateReport, ReportType},
    processors::generate_report,
};
use serde_json::Value;

use crate::helpers::TestEnv;
use crate::report_support::{self, expected, has_row, money, pdf_text, thousands};

fn job(report_type: ReportType, format: Format) -> GenerateReport {
    GenerateReport {
        report_type,
        format,
        start_date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
        profile_ids: None,
        recipient_email: Vec::new(),
        output_path: None,
    }
}

/// A database holding the golden events and their rollups.
async fn golden_env() -> TestEnv {
    let (env, _) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    report_support::fill_rollups(&env).await;
    env
}

/// Generates the report in all three formats; returns (csv rows, json document, pdf text).
async fn generate_all(env: &TestEnv, report_type: ReportType) -> (Vec<csv::StringRecord>, Value, String) {
    let mut paths: Vec<PathBuf> = Vec::new();
    for format in [Format::Csv, Format::Json, Format::Pdf] {
        let (ctx, progress) = report_support::context(env, &format!("job-{format:?}"), 1);
        let out = generate_report(&ctx, &job(report_type, format)).await.unwrap();
        let path = out.path.unwrap();
        assert!(path.starts_with(env.settings.reports_dir.canonicalize().unwrap()), "{path:?}");
        assert!(path.extension().unwrap() == format.extension());
        assert_eq!(progress.lock().unwrap().last().unwrap().0, 100);
        paths.push(path);
    }
    let mut reader = csv::Reader::from_path(&paths[0]).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut rows = vec![header];
    rows.extend(reader.records().map(Result::unwrap));
    let json = serde_json::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
    (rows, json, pdf_text(&paths[2]))
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

/// Checks one table against golden rows: CSV cells equal the golden values (text or number),
/// JSON objects too, and every row appears in the PDF as `pdf_cells` renders it.
fn check_table(
    csv_rows: &[csv::StringRecord],
    json_rows: &Value,
    golden_rows: &Value,
    keys: &[&str],
    pdf: &str,
    pdf_cells: impl Fn(&Value) -> Vec<String>,
) {
    let golden_rows = golden_rows.as_array().unwrap();
    let header: Vec<&str> = csv_rows[0].iter().collect();
    assert_eq!(csv_rows.len() - 1, golden_rows.len(), "CSV rows");
    assert_eq!(json_rows.as_array().unwrap().len(), golden_rows.len(), "JSON rows");
    for (i, want) in golden_rows.iter().enumerate() {
        for key in keys {
            let column = header.iter().position(|h| h == key).unwrap_or_else(|| panic!("CSV column {key}"));
            let (got_csv, got_json, want) = (&csv_rows[i + 1][column], &json_rows[i][*key], &want[*key]);
            match want {
                Value::String(s) => {
                    assert_eq!(got_csv, s, "CSV row {i} {key}");
                    assert_eq!(got_json, want, "JSON row {i} {key}");
                }
                _ => {
                    let w = want.as_f64().unwrap();
                    // Average order values are rounded from exact cents here, from floats by Python.
                    let tolerance = if *key == "aov" { 0.0100001 } else { 1e-9 };
                    assert!(close(got_csv.parse().unwrap(), w, tolerance), "CSV row {i} {key}: {got_csv} vs {w}");
                    assert!(close(got_json.as_f64().unwrap(), w, tolerance), "JSON row {i} {key}: {got_json} vs {w}");
                }
            }
        }
        let cells = pdf_cells(want);
        assert!(has_row(pdf, &cells), "PDF lacks row {cells:?}\n{pdf}");
    }
}

fn int(v: &Value) -> String {
    thousands(v.as_i64().unwrap())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

fn percent(part: i64, whole: i64) -> String {
    format!("{:.2} %", part as f64 / whole as f64 * 100.0)
}

#[tokio::test]
async fn revenue_summary_matches_the_golden_figures_in_csv_json_and_pdf() {
    let env = golden_env().await;
    let (csv, json, pdf) = generate_all(&env, ReportType::RevenueSummary).await;
    let golden = expected();
    check_table(
        &csv,
        &json["tables"]["revenue_by_day"],
        &golden["revenue_by_day"],
        &["day", "revenue", "orders", "aov"],
        &pdf,
        |r| vec![text(&r["day"]), money(r["revenue"].as_f64().unwrap()), int(&r["orders"])],
    );
    let totals = &golden["totals"];
    assert!(close(json["kpis"]["revenue"].as_f64().unwrap(), totals["revenue"].as_f64().unwrap(), 1e-9));
    assert_eq!(json["kpis"]["orders"], totals["orders"]);
    let by_source: f64 =
        json["tables"]["revenue_by_source"].as_array().unwrap().iter().map(|r| r["revenue"].as_f64().unwrap()).sum();
    assert!(close(by_source, totals["revenue"].as_f64().unwrap(), 1e-6), "sources add up to the total");
    assert!(pdf.contains(&money(totals["revenue"].as_f64().unwrap())), "{pdf}");
    assert!(pdf.contains(&int(&totals["orders"])));
    assert!(pdf.contains("Revenue summary") && pdf.contains("2026-03-07 to 2026-03-09") && pdf.contains("Page 1 of"));
}

#[tokio::test]
async fn engagement_metrics_match_the_golden_figures_in_csv_json_and_pdf() {
    let env = golden_env().await;
    let (csv, json, pdf) = generate_all(&env, ReportType::EngagementMetrics).await;
    let golden = expected();
    let keys = ["day", "events", "unique_users", "sessions", "errors", "error_rate"];
    check_table(&csv, &json["tables"]["engagement_by_day"], &golden["engagement_by_day"], &keys, &pdf, |r| {
        let rate = percent(r["errors"].as_i64().unwrap(), r["events"].as_i64().unwrap());
        vec![text(&r["day"]), int(&r["events"]), int(&r["unique_users"]), int(&r["sessions"]), int(&r["errors"]), rate]
    });
    assert_eq!(json["kpis"]["events"], golden["totals"]["events"]);
    assert!(pdf.contains(&int(&golden["totals"]["events"])), "{pdf}");
    // Distinct users of the whole period, counted here from the events themselves.
    let users: std::collections::HashSet<String> =
        report_support::golden_events().iter().filter_map(|e| e["user_id"].as_str().map(str::to_owned)).collect();
    assert_eq!(json["kpis"]["unique_users"], users.len());
}

#[tokio::test]
async fn profile_performance_matches_the_golden_figures_and_its_pdf_spans_pages() {
    let env = golden_env().await;
    let (csv, json, pdf) = generate_all(&env, ReportType::ProfilePerformance).await;
    let golden = expected();
    let keys = ["profile_id", "day", "impressions", "clicks", "ctr", "purchases", "revenue"];
    check_table(&csv, &json["tables"]["profile_by_day"], &golden["profile_by_day"], &keys, &pdf, |r| {
        let (impressions, clicks) = (r["impressions"].as_i64().unwrap(), r["clicks"].as_i64().unwrap());
        let ctr = if impressions == 0 { "0.00 %".into() } else { percent(clicks, impressions) };
        vec![
            text(&r["profile_id"]),
            text(&r["day"]),
            int(&r["impressions"]),
            int(&r["clicks"]),
            ctr,
            int(&r["purchases"]),
            money(r["revenue"].as_f64().unwrap()),
        ]
    });
    let rows = golden["profile_by_day"].as_array().unwrap();
    let impressions: i64 = rows.iter().map(|r| r["impressions"].as_i64().unwrap()).sum();
    let revenue: f64 = rows.iter().map(|r| r["revenue"].as_f64().unwrap()).sum();
    assert_eq!(json["kpis"]["impressions"], impressions);
    assert!(pdf.contains(&thousands(impressions)) && pdf.contains(&money(revenue)), "{pdf}");
    let pages = pdf.matches('\u{c}').count();
    assert!(pages >= 2, "{pages} page(s)");
    assert!(pdf.contains(&format!("Page 2 of {pages}")) && pdf.contains("Profiles by day (continued)"));
}

#[tokio::test]
async fn cost_analysis_matches_the_golden_figures_in_csv_json_and_pdf() {
    let env = golden_env().await;
    let (csv, json, pdf) = generate_all(&env, ReportType::CostAnalysis).await;
    let golden = expected();
    check_table(
        &csv,
        &json["tables"]["cost_by_day"],
        &golden["cost_by_day"],
        &["day", "category", "feature", "amount"],
        &pdf,
        |r| vec![text(&r["day"]), text(&r["category"]), text(&r["feature"]), money(r["amount"].as_f64().unwrap())],
    );
    let total: f64 = golden["cost_by_day"].as_array().unwrap().iter().map(|r| r["amount"].as_f64().unwrap()).sum();
    assert!(close(json["kpis"]["total_cost"].as_f64().unwrap(), total, 1e-6));
    assert!(pdf.contains(&money(total)), "{pdf}");
}

#[tokio::test]
async fn a_profile_filter_narrows_profile_performance_to_those_profiles() {
    let env = golden_env().await;
    let mut job = job(ReportType::ProfilePerformance, Format::Json);
    job.profile_ids = Some(vec!["profile_01".into(), "profile_02".into()]);
    let (ctx, _) = report_support::context(&env, "filtered", 1);
    let path = generate_report(&ctx, &job).await.unwrap().path.unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let golden = expected();
    let want: Vec<&Value> = golden["profile_by_day"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ["profile_01", "profile_02"].contains(&r["profile_id"].as_str().unwrap()))
        .collect();
    let got = json["tables"]["profile_by_day"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(g, w)| g["profile_id"] == w["profile_id"] && g["clicks"] == w["clicks"]));
}

#[tokio::test]
async fn a_report_over_days_not_yet_rolled_up_rolls_them_up_first() {
    let (env, _) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let (ctx, _) = report_support::context(&env, "job-unrolled", 1);
    let out = generate_report(&ctx, &job(ReportType::RevenueSummary, Format::Json)).await.unwrap();
    assert_eq!(out.summary["days_rolled_up_first"], serde_json::json!(["2026-03-07", "2026-03-08", "2026-03-09"]));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.path.unwrap()).unwrap()).unwrap();
    let totals = &expected()["totals"];
    assert!(close(json["kpis"]["revenue"].as_f64().unwrap(), totals["revenue"].as_f64().unwrap(), 1e-9));
    assert_eq!(json["kpis"]["orders"], totals["orders"]);

    // A second report finds every day rolled up.
    let (ctx, _) = report_support::context(&env, "job-rolled", 1);
    let out = generate_report(&ctx, &job(ReportType::RevenueSummary, Format::Csv)).await.unwrap();
    assert_eq!(out.summary["days_rolled_up_first"], serde_json::json!([]));
}
