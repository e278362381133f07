//! Report e-mail against a real SMTP server (`tests/support/smtp_sink.py`, Python aiosmtpd):
//! the attachment arrives byte for byte, a server that is down makes the job retryable and the
//! retry only re-sends, and e-mail without SMTP settings fails clearly.

use std::{os::unix::fs::MetadataExt, path::Path, process::Stdio, time::Duration};

use chrono::NaiveDate;
use eventmill::{
    domain::job::{Format, GenerateReport, ReportType},
    processors::generate_report,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::helpers::eventually;
use crate::report_support::{self, money};

/// A running SMTP sink writing what it receives into `folder`.
pub(crate) struct Sink {
    _child: Child,
}

impl Sink {
    pub(crate) async fn start(port: u16, folder: &Path) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap();
        assert_eq!(ready.as_deref(), Some("ready"), "smtp sink did not start (is aiosmtpd installed?)");
        Self { _child: child }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The summary the sink wrote for its first message, once there.
pub(crate) async fn first_message(folder: &Path) -> Value {
    let summary = folder.join("1.json");
    assert!(eventually(Duration::from_secs(10), || async { summary.exists() }).await, "no e-mail arrived");
    serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap()
}

fn weekly_pdf(recipients: &[&str]) -> GenerateReport {
    GenerateReport {
        report_type: ReportType::RevenueSummary,
        format: Format::Pdf,
        start_date: NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 9).unwrap(),
        profile_ids: None,
        recipient_email: recipients.iter().map(|r| (*r).to_owned()).collect(),
        output_path: Some("weekly/revenue.pdf".into()),
    }
}

fn assert_delivered(message: &Value, file: &Path, recipients: &[&str]) {
    assert_eq!(message["rcpt_tos"], serde_json::json!(recipients));
    assert_eq!(message["mail_from"], "eventmill@localhost");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["filename"], "revenue.pdf");
    assert_eq!(attachments[0]["content_type"], "application/pdf");
    let sent = std::fs::read(attachments[0]["path"].as_str().unwrap()).unwrap();
    assert!(sent == std::fs::read(file).unwrap(), "attachment bytes differ from the report file");
    let revenue = money(report_support::expected()["totals"]["revenue"].as_f64().unwrap());
    assert!(message["text"].as_str().unwrap().contains(&format!("Revenue: {revenue}")), "{message}");
    assert!(message["html"].as_str().unwrap().contains(&revenue), "{message}");
    assert!(message["text"].as_str().unwrap().contains("Data complete to "), "{message}");
}

#[tokio::test]
async fn a_report_is_emailed_to_every_recipient_with_the_file_attached() {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let (env, reports) = report_support::env_with(&[("EVENTMILL_SMTP_URL", url.as_str())]).await;
    report_support::load_events(&env).await;
    report_support::fill_rollups(&env).await;
    let mail = reports.with_file_name(format!("mail-{}", uuid::Uuid::new_v4().simple()));
    let _sink = Sink::start(port, &mail).await;
    let recipients = ["manager@example.com", "cfo@example.com"];
    let (ctx, _) = report_support::context(&env, "mail-1", 1);
    let out = generate_report(&ctx, &weekly_pdf(&recipients)).await.unwrap();
    let file = out.path.unwrap();
    assert!(file.ends_with("weekly/revenue.pdf"));
    assert_eq!(out.summary["emailed_to"], serde_json::json!(recipients));
    assert_delivered(&first_message(&mail).await, &file, &recipients);
    assert!(!reports.join(".pending/mail-1.json").exists(), "marker cleared after delivery");
}

#[tokio::test]
async fn an_smtp_server_that_is_down_makes_the_job_retry_and_the_retry_only_resends() {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let (env, reports) = report_support::env_with(&[("EVENTMILL_SMTP_URL", url.as_str())]).await;
    report_support::load_events(&env).await;
    report_support::fill_rollups(&env).await;
    let recipients = ["manager@example.com"];
    let job = weekly_pdf(&recipients);

    let (ctx, _) = report_support::context(&env, "mail-down", 1);
    let err = generate_report(&ctx, &job).await.unwrap_err();
    assert!(err.is_retryable() && err.message().contains("SMTP"), "{err:?}");
    let file = reports.canonicalize().unwrap().join("weekly/revenue.pdf");
    let before = std::fs::metadata(&file).expect("the report is written before e-mailing");
    assert!(reports.join(".pending/mail-down.json").exists());

    // Empty rollups: a recomputation would now show zero revenue in the file and the e-mail.
    sqlx::query("TRUNCATE rollup_daily, rollup_daily_summary").execute(env.pool()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mail = reports.with_file_name(format!("mail-{}", uuid::Uuid::new_v4().simple()));
    let _sink = Sink::start(port, &mail).await;
    let (ctx, progress) = report_support::context(&env, "mail-down", 2);
    let out = generate_report(&ctx, &job).await.unwrap();
    assert_eq!(out.summary["recomputed"], false);
    assert_eq!(out.path.as_deref(), Some(file.as_path()));
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!((before.ino(), before.mtime_nsec(), before.len()), (after.ino(), after.mtime_nsec(), after.len()));
    assert!(progress.lock().unwrap().iter().any(|(_, m)| m.contains("sending the e-mail again")));
    assert_delivered(&first_message(&mail).await, &file, &recipients);
    assert!(!reports.join(".pending/mail-down.json").exists());
}

#[tokio::test]
async fn email_asked_for_without_smtp_settings_fails_the_job_with_a_clear_error() {
    let (env, reports) = report_support::env_with(&[]).await;
    let (ctx, _) = report_support::context(&env, "no-smtp", 1);
    let err = generate_report(&ctx, &weekly_pdf(&["manager@example.com"])).await.unwrap_err();
    assert!(!err.is_retryable() && err.message().contains("EVENTMILL_SMTP_URL"), "{err:?}");
    assert!(!reports.join("weekly/revenue.pdf").exists(), "no work done");

    let err = generate_report(&ctx, &weekly_pdf(&["not an address"])).await.unwrap_err();
    assert!(!err.is_retryable() && err.message().contains("not an address"), "{err:?}");
}
