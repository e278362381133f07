//! The PDF renderer's input (a page-oriented document of pre-formatted text) and its error type.
//! `super::document` builds it from a format-neutral `Report`.

/// A complete report: header, KPI summary, charts, tables and notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportDocument {
    /// Report title, e.g. "Revenue summary". Also repeated in every footer.
    pub title: String,
    /// Covered period, e.g. "2026-03-07 to 2026-03-09 (UTC)".
    pub period: String,
    /// Generation time, e.g. "2026-11-23 17:05 UTC".
    pub generated_at: String,
    /// KPI cards: (label, already formatted value), e.g. ("Revenue", "€365,720.19").
    pub kpis: Vec<(String, String)>,
    /// Charts, drawn after the KPIs in the given order.
    pub charts: Vec<Chart>,
    /// Tables, drawn after the charts; they break across pages.
    pub tables: Vec<Table>,
    /// Free-form notes, e.g. "Export capped at 10,000 rows of 1,000,000".
    pub notes: Vec<String>,
}

/// A bar or line chart over categorical labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub kind: ChartKind,
    /// Category labels along the x axis.
    pub labels: Vec<String>,
    /// One or more series; `values[i]` belongs to `labels[i]`. Missing or
    /// non-finite values are skipped.
    pub series: Vec<Series>,
}

/// How a [`Chart`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Grouped vertical bars, one group per label.
    Bar,
    /// One polyline per series.
    Line,
}

/// A named list of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// A table of pre-formatted cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    /// Rows of cells; short rows are padded with empty cells, extra cells are ignored.
    pub rows: Vec<Vec<String>>,
}

/// A table column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub header: String,
    /// Right-align header and cells (numbers).
    pub align_right: bool,
    /// Relative width; widths are distributed proportionally (non-positive counts as 1).
    pub width_weight: f32,
}

/// Why a PDF could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// An embedded font could not be parsed.
    #[error("cannot load embedded font: {0}")]
    Font(String),
    /// Font subsetting failed on malformed font data.
    #[error("cannot subset embedded font: {0}")]
    Subset(String),
    /// printpdf reported an error while serializing.
    #[error("cannot serialize PDF: {0}")]
    Serialize(String),
}
