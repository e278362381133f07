//! report file -> **e-mail**: sends a written report as an attachment with lettre over SMTP
//! (`EVENTMILL_SMTP_URL`: `smtp://host:port` plain, `smtp://host?tls=required` for STARTTLS,
//! `smtps://user:password@host` for implicit TLS; TLS is rustls with the webpki roots).
//!
//! A [`Mail`] is plain data (serde), so the processor can keep it in a delivery-pending marker
//! and a retry re-sends it without recomputing the report.

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, header::ContentType},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// Why an e-mail was not sent, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail was requested but EVENTMILL_SMTP_URL is not set")]
    NotConfigured,
    #[error("EVENTMILL_SMTP_URL is not a usable SMTP URL: {0}")]
    BadUrl(String),
    #[error("{0:?} is not a valid e-mail address: {1}")]
    BadAddress(String, String),
    #[error("cannot read the attachment {path}: {source}")]
    Attachment { path: PathBuf, source: std::io::Error },
    #[error("cannot build the e-mail: {0}")]
    Build(String),
    #[error("the SMTP server refused the e-mail: {0}")]
    Rejected(String),
    #[error("the SMTP server could not be reached or failed: {0}")]
    Unavailable(String),
}

impl EmailError {
    /// Whether the same e-mail can succeed later (server down, timeout, 4xx).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// One e-mail with one attached file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mail {
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachment: PathBuf,
    pub content_type: String,
}

/// Checks every address; the job fails at once on a bad one.
pub fn parse_recipients(list: &[String]) -> Result<Vec<Mailbox>, EmailError> {
    list.iter()
        .map(|address| {
            if address.contains(['\r', '\n', ',', ';']) {
                let reason = "one address per entry, without line breaks, commas or semicolons".to_owned();
                return Err(EmailError::BadAddress(address.clone(), reason));
            }
            address
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| EmailError::BadAddress(address.clone(), e.to_string()))
        })
        .collect()
}

/// An SMTP connection factory plus the sender address.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The configured mailer; [`EmailError::NotConfigured`] when `EVENTMILL_SMTP_URL` is unset.
    pub fn from_settings(settings: &Settings) -> Result<Self, EmailError> {
        let url = settings.smtp_url.as_ref().ok_or(EmailError::NotConfigured)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| EmailError::BadUrl(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = settings.smtp_from.parse().map_err(|e: lettre::address::AddressError| {
            EmailError::BadAddress(settings.smtp_from.clone(), e.to_string())
        })?;
        Ok(Self { transport, from })
    }

    /// Sends `mail` to all its recipients in one SMTP transaction.
    #[tracing::instrument(skip_all, fields(recipients = mail.recipients.len(), subject = %mail.subject))]
    pub async fn send(&self, mail: &Mail) -> Result<(), EmailError> {
        let message = self.message(mail).await?;
        self.transport.send(message).await.map_err(|e| {
            if e.is_permanent() { EmailError::Rejected(e.to_string()) } else { EmailError::Unavailable(e.to_string()) }
        })?;
        tracing::info!("e-mail delivered");
        Ok(())
    }

    async fn message(&self, mail: &Mail) -> Result<Message, EmailError> {
        let bytes = tokio::fs::read(&mail.attachment)
            .await
            .map_err(|source| EmailError::Attachment { path: mail.attachment.clone(), source })?;
        let file_name = mail.attachment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let content_type = ContentType::parse(&mail.content_type).map_err(|e| EmailError::Build(e.to_string()))?;
        let mut builder = Message::builder().from(self.from.clone()).subject(&mail.subject);
        for to in parse_recipients(&mail.recipients)? {
            builder = builder.to(to);
        }
        builder
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
                    .singlepart(Attachment::new(file_name).body(bytes, content_type)),
            )
            .map_err(|e| EmailError::Build(e.to_string()))
    }
}

/// MIME type of a report file by extension.
pub fn content_type_for(extension: &str) -> &'static str {
    match extension {
        "pdf" => "application/pdf",
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The plain-text and HTML bodies: title, period, a note under it (the time the report's data is
/// complete to), the KPIs, the attached file's name.
pub fn bodies(
    title: &str,
    period: &str,
    note: Option<&str>,
    kpis: &[(String, String)],
    file_name: &str,
) -> (String, String) {
    let mut text = format!("{title}\nPeriod: {period}\n");
    if let Some(note) = note {
        text.push_str(&format!("{note}\n"));
    }
    text.push('\n');
    for (label, value) in kpis {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!("\nThe full report is attached ({file_name}).\n-- eventmill\n"));
    let rows: String = kpis
        .iter()
        .map(|(l, v)| format!("<tr><th align=\"left\">{}</th><td align=\"right\">{}</td></tr>", escape(l), escape(v)))
        .collect();
    let html = format!(
        "<html><body><h2>{}</h2><p>Period: {}</p>{}<table cellpadding=\"4\">{rows}</table>\
         <p>The full report is attached ({}).</p><p style=\"color:#6b7280\">eventmill</p></body></html>",
        escape(title),
        escape(period),
        note.map(|n| format!("<p>{}</p>", escape(n))).unwrap_or_default(),
        escape(file_name)
    );
    (text, html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_are_named() {
        let err = parse_recipients(&["ok@example.com".into(), "not an address".into()]).unwrap_err();
        assert!(err.to_string().contains("not an address"), "{err}");
    }

    #[test]
    fn html_body_escapes_values() {
        let (text, html) = bodies("R<&>", "p", Some("n<"), &[("Revenue".into(), "<b>1</b>".into())], "f.pdf");
        assert!(text.contains("Revenue: <b>1</b>"));
        assert!(html.contains("&lt;b&gt;1&lt;/b&gt;") && html.contains("R&lt;&amp;&gt;"));
        assert!(text.contains("Period: p\nn<\n") && html.contains("<p>n&lt;</p>"));
    }
}
