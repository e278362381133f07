//! export rows -> **file formats**: CSV (RFC 4180, formula injection neutralised), JSON (one array,
//! written element by element, so it is streamed yet valid JSON) and PDF (a table capped at
//! `EVENTMILL_EXPORT_PDF_MAX_ROWS` rows with a note saying how many rows the export holds).
//!
//! Writes go to a 256 KiB buffered temp file; the occasional flush is a short blocking write, which
//! the worker's multi-threaded runtime absorbs.

use std::io::Write;

use super::{ExportError, ExportOutcome, ExportQuery, columns, title};
use crate::{
    deliver::AtomicFile,
    domain::job::Format,
    report::{csv::neutralize, pdf},
};

/// One exported value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    /// A JSON number's text (written as a number when it is one).
    Number(Option<String>),
    /// A JSON document's text (event properties).
    Json(String),
}

impl Cell {
    fn text(&self) -> &str {
        match self {
            Self::Text(v) | Self::Number(v) => v.as_deref().unwrap_or(""),
            Self::Json(v) => v,
        }
    }

    fn json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Text(None) | Self::Number(None) => J::Null,
            Self::Text(Some(t)) => J::String(t.clone()),
            Self::Number(Some(n)) => {
                serde_json::from_str::<serde_json::Number>(n).map(J::Number).unwrap_or_else(|_| J::String(n.clone()))
            }
            Self::Json(j) => serde_json::from_str(j).unwrap_or_else(|_| J::String(j.clone())),
        }
    }
}

/// The writer of one export file.
pub enum Sink {
    Csv {
        writer: Box<csv::Writer<AtomicFile>>,
        rows: u64,
    },
    Json {
        file: AtomicFile,
        names: &'static [&'static str],
        rows: u64,
    },
    /// `names` are the file's columns; the PDF leaves out `event_id` (36 characters nobody reads
    /// on paper; CSV and JSON keep it) so the other columns fit an A4 page untruncated.
    Pdf {
        file: AtomicFile,
        names: &'static [&'static str],
        kept: Vec<Vec<String>>,
        max: usize,
        rows: u64,
    },
}

impl Sink {
    /// Starts the file (CSV header, JSON `[`).
    pub fn new(query: &ExportQuery, mut file: AtomicFile, pdf_max_rows: usize) -> Result<Self, ExportError> {
        let names = columns(query.data_type);
        Ok(match query.format {
            Format::Csv => {
                let mut writer = csv::WriterBuilder::new().buffer_capacity(64 * 1024).from_writer(file);
                writer.write_record(names).map_err(csv_error)?;
                Self::Csv { writer: Box::new(writer), rows: 0 }
            }
            Format::Json => {
                file.write_all(b"[")?;
                Self::Json { file, names, rows: 0 }
            }
            Format::Pdf => Self::Pdf { file, names, kept: Vec::new(), max: pdf_max_rows, rows: 0 },
        })
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        match self {
            Self::Csv { rows, .. } | Self::Json { rows, .. } | Self::Pdf { rows, .. } => *rows,
        }
    }

    /// Writes (or, for a PDF past its cap, counts) one row.
    pub fn push(&mut self, cells: &[Cell]) -> Result<(), ExportError> {
        match self {
            Self::Csv { writer, rows } => {
                *rows += 1;
                for cell in cells {
                    let keep_number = matches!(cell, Cell::Number(_)) && cell.text().parse::<f64>().is_ok();
                    let text = if keep_number { cell.text().into() } else { neutralize(cell.text()) };
                    writer.write_field(text.as_bytes()).map_err(csv_error)?;
                }
                writer.write_record(None::<&[u8]>).map_err(csv_error)?;
            }
            Self::Json { file, names, rows } => {
                *rows += 1;
                let object: serde_json::Map<String, serde_json::Value> =
                    names.iter().zip(cells).map(|(n, c)| ((*n).to_owned(), c.json())).collect();
                file.write_all(if *rows == 1 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *file, &object).map_err(std::io::Error::from)?;
            }
            Self::Pdf { names, kept, max, rows, .. } => {
                *rows += 1;
                if kept.len() < *max {
                    let shown = names.iter().zip(cells).filter(|(n, _)| **n != "event_id");
                    kept.push(shown.map(|(_, c)| c.text().to_owned()).collect());
                }
            }
        }
        Ok(())
    }

    /// Ends the file and commits it.
    pub fn finish(self, query: &ExportQuery) -> Result<ExportOutcome, ExportError> {
        match self {
            Self::Csv { writer, rows } => {
                let file = (*writer).into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok(ExportOutcome { rows, rows_written: rows, bytes: file.commit()? })
            }
            Self::Json { mut file, rows, .. } => {
                file.write_all(b"\n]\n")?;
                Ok(ExportOutcome { rows, rows_written: rows, bytes: file.commit()? })
            }
            Self::Pdf { mut file, kept, rows, .. } => {
                let written = kept.len() as u64;
                let bytes = pdf::render_pdf(&pdf_document(query, kept, rows))?;
                file.write_all(&bytes)?;
                Ok(ExportOutcome { rows, rows_written: written, bytes: file.commit()? })
            }
        }
    }
}

fn csv_error(error: csv::Error) -> ExportError {
    ExportError::Write(std::io::Error::other(error.to_string()))
}

fn pdf_document(query: &ExportQuery, kept: Vec<Vec<String>>, rows: u64) -> pdf::ReportDocument {
    let count = |n: u64| crate::report::Value::Int(n as i64).display();
    let mut notes = Vec::new();
    if (kept.len() as u64) < rows {
        notes.push(format!(
            "Capped: this PDF shows the first {} of {} rows. Export as CSV or JSON for every row.",
            count(kept.len() as u64),
            count(rows)
        ));
    }
    let filters = serde_json::to_string(&query.filters).unwrap_or_default();
    if !query.filters.is_empty() {
        notes.push(format!("Filters: {filters}"));
    }
    let headers: Vec<&'static str> = columns(query.data_type).iter().copied().filter(|h| *h != "event_id").collect();
    let widths: Vec<f32> = headers
        .iter()
        .map(|h| match *h {
            "timestamp" | "properties" => 2.2,
            "amount" | "source" => 0.8,
            _ => 1.3,
        })
        .collect();
    pdf::export_document(pdf::ExportDocument {
        title: title(query.data_type).to_owned(),
        period: format!("{} to {} (UTC)", query.start, query.end),
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        kpis: vec![("Rows".into(), count(rows)), ("Rows shown".into(), count(kept.len() as u64))],
        headers: &headers,
        widths: &widths,
        rows: kept,
        notes,
    })
}
