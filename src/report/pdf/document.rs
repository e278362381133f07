//! Maps the format-neutral [`Report`] (and an export's capped table) onto the renderer's
//! [`ReportDocument`]: values in their human form, numbers right-aligned, KPIs as cards.

use super::model::{Chart, ChartKind, Column, ReportDocument, Series, Table};
use crate::report::{Report, Value};

/// The PDF document of a report.
pub fn report_document(report: &Report) -> ReportDocument {
    let mut notes = report.notes.clone();
    if let Some(ids) = &report.profile_ids {
        notes.insert(0, format!("Profiles: {}", ids.join(", ")));
    }
    if let Some(completeness) = report.completeness() {
        notes.insert(0, completeness);
    }
    ReportDocument {
        title: report.title.clone(),
        period: report.period(),
        generated_at: report.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        kpis: report.kpis.iter().map(|k| (k.label.to_owned(), k.value.display())).collect(),
        charts: report
            .charts
            .iter()
            .map(|c| Chart {
                title: c.title.clone(),
                kind: if c.bars { ChartKind::Bar } else { ChartKind::Line },
                labels: c.labels.clone(),
                series: c
                    .series
                    .iter()
                    .map(|(name, values)| Series { name: name.clone(), values: values.clone() })
                    .collect(),
            })
            .collect(),
        tables: report
            .tables
            .iter()
            .map(|t| {
                let numeric = |i: usize| t.rows.first().is_some_and(|r| is_numeric(r.get(i)));
                Table {
                    title: t.title.clone(),
                    columns: t
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| Column {
                            header: c.header.to_owned(),
                            align_right: numeric(i),
                            width_weight: 1.0,
                        })
                        .collect(),
                    rows: t.rows.iter().map(|r| r.iter().map(Value::display).collect()).collect(),
                }
            })
            .collect(),
        notes,
    }
}

fn is_numeric(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Int(_) | Value::Money(_) | Value::Ratio(_) | Value::Empty))
}

/// The PDF document of an export: a summary and one (capped) table of raw rows.
pub struct ExportDocument<'a> {
    pub title: String,
    pub period: String,
    pub generated_at: String,
    pub kpis: Vec<(String, String)>,
    pub headers: &'a [&'static str],
    /// Relative widths of the columns.
    pub widths: &'a [f32],
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

/// The renderer's document of an export.
pub fn export_document(export: ExportDocument<'_>) -> ReportDocument {
    ReportDocument {
        title: export.title.clone(),
        period: export.period,
        generated_at: export.generated_at,
        kpis: export.kpis,
        charts: Vec::new(),
        tables: vec![Table {
            title: "Rows".into(),
            columns: export
                .headers
                .iter()
                .zip(export.widths)
                .map(|(h, w)| Column { header: (*h).to_owned(), align_right: false, width_weight: *w })
                .collect(),
            rows: export.rows,
        }],
        notes: export.notes,
    }
}
