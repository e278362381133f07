//! EXPORT_DATA: filters, the three formats, formula neutralisation, output paths confined to the
//! reports folder, no partial files, and flat memory on a million rows (measured in a child process).

use chrono::NaiveDate;
use eventmill::{
    domain::job::{ExportData, ExportDataType, ExportFilters, Format},
    processors::export_data,
};
use serde_json::{Value, json};

use crate::report_support::{self, pdf_text};

fn export(data_type: ExportDataType, format: Format) -> ExportData {
    ExportData {
        data_type,
        format,
        start_date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
        filters: ExportFilters::default(),
        output_path: None,
    }
}

#[tokio::test]
async fn a_filtered_transactions_export_holds_exactly_the_matching_purchases_in_csv_and_json() {
    let (env, _) = report_support::env_with(&[]).await;
    report_support::load_events(&env).await;
    let want: Vec<Value> = report_support::golden_events()
        .into_iter()
        .filter(|e| {
            e["event_type"] == "purchase" && e["source"] == "web" && e["properties"]["profile_id"] == "profile_03"
        })
        .collect();
    assert!(!want.is_empty());
    let mut job = export(ExportDataType::Transactions, Format::Csv);
    job.filters.source = Some("web".into());
    job.filters.properties.insert("profile_id".into(), json!("profile_03"));
    let (ctx, _) = report_support::context(&env, "export-csv", 1);
    let out = export_data(&ctx, &job).await.unwrap();
    assert_eq!(out.summary["rows"], want.len());
    let mut reader = csv::Reader::from_path(out.path.unwrap()).unwrap();
    assert_eq!(reader.headers().unwrap().get(5), Some("amount"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), want.len());
    for (row, event) in rows.iter().zip(&want) {
        assert_eq!(&row[1], event["event_id"].as_str().unwrap());
        assert_eq!(row[5].parse::<f64>().unwrap(), event["properties"]["amount"].as_f64().unwrap());
    }

    job.format = Format::Json;
    let out = export_data(&ctx, &job).await.unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.path.unwrap()).unwrap()).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), want.len());
    assert_eq!(items[0]["event_id"], want[0]["event_id"]);
    assert_eq!(items[0]["amount"], want[0]["properties"]["amount"]);
    assert_eq!(items[0]["properties"], want[0]["properties"]);
}

#[tokio::test]
async fn a_pdf_export_is_capped_with_a_note_saying_so() {
    let (env, _) = report_support::env_with(&[("EVENTMILL_EXPORT_PDF_MAX_ROWS", "120")]).await;
    report_support::load_events(&env).await;
    let costs = report_support::golden_events().iter().filter(|e| e["event_type"] == "cost").count();
    let (ctx, _) = report_support::context(&env, "export-pdf", 1);
    let out = export_data(&ctx, &export(ExportDataType::Costs, Format::Pdf)).await.unwrap();
    assert_eq!(out.summary["capped"], true);
    let text = pdf_text(&out.path.unwrap());
    let note = format!("shows the first 120 of {} rows", report_support::thousands(costs as i64));
    assert!(text.contains(&note), "{text}");
    assert!(text.contains("Costs export") && text.contains("Page 2 of"));
}

#[tokio::test]
async fn a_csv_cell_starting_with_a_formula_is_neutralised() {
    let (env, _) = report_support::env_with(&[]).await;
    let day = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
    let ts = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    env.resources.partitions.ensure_for(std::iter::once(ts.timestamp_micros())).await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, ts, user_id, session_id, source, properties) \
         VALUES (gen_random_uuid(), 'page_view', $1, '=HYPERLINK(\"http://evil\",\"x\")', '@SUM(A1)', 'web', '{\"n\": -3}')",
    )
    .bind(ts)
    .execute(env.pool())
    .await
    .unwrap();
    let (ctx, _) = report_support::context(&env, "formula", 1);
    let out = export_data(&ctx, &export(ExportDataType::Engagement, Format::Csv)).await.unwrap();
    let mut reader = csv::Reader::from_path(out.path.unwrap()).unwrap();
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(&row[3], "'=HYPERLINK(\"http://evil\",\"x\")");
    assert_eq!(&row[4], "'@SUM(A1)");
    assert_eq!(&row[6], "{\"n\": -3}");
}

#[tokio::test]
async fn an_output_path_outside_the_reports_folder_is_rejected_before_any_work() {
    let (env, reports) = report_support::env_with(&[]).await;
    let outside = reports.with_file_name(format!("outside-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&reports).unwrap();
    std::os::unix::fs::symlink(&outside, reports.join("link")).unwrap();
    // A pool that cannot connect: touching the database would turn the error into a retryable one.
    let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    let ctx = report_support::context_with_pool(&env, pool, "escape");
    for path in ["../x.csv", "/etc/x", "a/../../x.csv", "link/x.csv"] {
        let mut job = export(ExportDataType::Engagement, Format::Csv);
        job.output_path = Some(path.into());
        let err = export_data(&ctx, &job).await.unwrap_err();
        assert!(!err.is_retryable() && err.message().contains(path), "{path}: {err:?}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing written outside");
    assert!(!reports.join("../x.csv").exists());
}

#[tokio::test]
async fn a_failed_export_leaves_no_file_behind() {
    let (env, reports) = report_support::env_with(&[]).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let ctx = report_support::context_with_pool(&env, pool, "fails");
    let mut job = export(ExportDataType::Engagement, Format::Csv);
    job.output_path = Some("nested/out.csv".into());
    let err = export_data(&ctx, &job).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let left: Vec<_> = std::fs::read_dir(reports.join("nested")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Run in a child process by the test below (ignored otherwise): exports what `EM_CHILD_*` says
/// and prints its row count and peak resident memory.
#[tokio::test]
#[ignore = "run by an_export_of_a_million_rows_keeps_memory_under_100_mb in a child process"]
async fn child_export_for_memory_measurement() {
    let Ok(db_url) = std::env::var("EM_CHILD_DATABASE_URL") else { return };
    let reports = std::env::var("EM_CHILD_REPORTS_DIR").unwrap();
    let format: Format = serde_json::from_value(json!(std::env::var("EM_CHILD_FORMAT").unwrap())).unwrap();
    let values = [("EVENTMILL_DATABASE_URL", db_url), ("EVENTMILL_REPORTS_DIR", reports)];
    let settings = eventmill::settings::Settings::from_lookup(eventmill::processors::registry().catalog(), |k| {
        values.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let pool = eventmill::store::connect(&values[0].1, 2).await.unwrap();
    let ctx = eventmill::processors::JobContext::new(
        std::sync::Arc::new(eventmill::processors::Analytics::new(pool, &settings)),
        "million".into(),
        1,
        None,
    );
    let mut job = export(ExportDataType::Engagement, format);
    job.start_date = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    job.end_date = job.start_date;
    let out = export_data(&ctx, &job).await.unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = hwm.split_whitespace().nth(1).unwrap().parse().unwrap();
    println!("CHILD rows={} bytes={} vmhwm_kb={kb}", out.summary["rows"], out.summary["bytes"]);
}

#[tokio::test]
async fn an_export_of_a_million_rows_keeps_memory_under_100_mb() {
    let (env, reports) = report_support::env_with(&[]).await;
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    env.resources.partitions.ensure_for(std::iter::once(day.timestamp_micros())).await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, ts, user_id, session_id, source, properties) \
         SELECT gen_random_uuid(), 'page_view', $1 + i * interval '80 milliseconds', 'user_' || (i % 5000), \
           'sess_' || (i % 20000), 'web', jsonb_build_object('i', i, 'path', '/products/' || (i % 100)) \
         FROM generate_series(1, 1000000) AS i",
    )
    .bind(day)
    .execute(env.pool())
    .await
    .unwrap();
    for format in ["CSV", "JSON"] {
        let output = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["exports::child_export_for_memory_measurement", "--exact", "--ignored", "--nocapture"])
            .env("EM_CHILD_DATABASE_URL", &env.db_url)
            .env("EM_CHILD_REPORTS_DIR", &reports)
            .env("EM_CHILD_FORMAT", format)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let line = stdout.lines().find(|l| l.starts_with("CHILD ")).unwrap_or_else(|| panic!("{stdout}"));
        let field = |name: &str| -> u64 {
            line.split_whitespace().find_map(|f| f.strip_prefix(name)).unwrap().parse().unwrap()
        };
        let mb = field("vmhwm_kb=") as f64 / 1024.0;
        println!("1,000,000-row {format} export: {} bytes, peak RSS (VmHWM) {mb:.1} MB", field("bytes="));
        assert_eq!(field("rows="), 1_000_000);
        assert!(mb < 100.0, "peak memory {mb:.1} MB");
    }
    std::fs::remove_dir_all(&reports).unwrap();
}

#[tokio::test]
async fn a_pdf_export_shows_accented_and_euro_characters_as_extractable_text() {
    let (env, _) = report_support::env_with(&[]).await;
    let ts = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap().and_hms_opt(9, 30, 0).unwrap().and_utc();
    env.resources.partitions.ensure_for(std::iter::once(ts.timestamp_micros())).await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, ts, user_id, source, properties) VALUES (gen_random_uuid(), 'cost', $1, \
         'Zoë Müller', 'web', '{\"category\": \"café €\", \"feature\": \"Ωmega–search\", \"amount\": 12.5}')",
    )
    .bind(ts)
    .execute(env.pool())
    .await
    .unwrap();
    let (ctx, _) = report_support::context(&env, "accents", 1);
    let out = export_data(&ctx, &export(ExportDataType::Costs, Format::Pdf)).await.unwrap();
    let text = pdf_text(&out.path.unwrap());
    for expected in ["Zoë Müller", "café €", "Ωmega–search", "12.5"] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
}

#[tokio::test]
async fn an_export_reports_its_rows_written_against_the_rollups_estimate_as_it_goes() {
    let (env, _) = report_support::env_with(&[]).await;
    let date = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
    let day = date.and_hms_opt(0, 0, 0).unwrap().and_utc();
    env.resources.partitions.ensure_for(std::iter::once(day.timestamp_micros())).await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, event_type, ts, user_id, source, properties) \
         SELECT gen_random_uuid(), 'page_view', $1 + i * interval '1 second', 'user_' || (i % 50), 'web', '{}' \
         FROM generate_series(1, 30000) AS i",
    )
    .bind(day)
    .execute(env.pool())
    .await
    .unwrap();
    let ctx = eventmill::processors::JobContext::new(env.resources.analytics.clone(), "fill".into(), 1, None);
    let rollup = eventmill::domain::job::DailyRollup { date, profile_ids: None };
    eventmill::processors::rollup::daily(&rollup, &ctx).await.unwrap();

    let mut job = export(ExportDataType::Engagement, Format::Csv);
    (job.start_date, job.end_date) = (date, date);
    let (ctx, progress) = report_support::context(&env, "export-progress", 1);
    export_data(&ctx, &job).await.unwrap();
    let rows: Vec<(u8, String)> =
        progress.lock().unwrap().iter().filter(|(_, m)| m.ends_with(" rows written")).cloned().collect();
    // 5% at the start, 90% spread over the 30,000 rows the rollup counted.
    assert_eq!(
        rows,
        vec![(35, "10000 rows written".into()), (65, "20000 rows written".into()), (95, "30000 rows written".into())]
    );
}
