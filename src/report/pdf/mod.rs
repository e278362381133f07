//! report -> **PDF**: renders a [`Report`](super::Report) (or an export's capped table) with printpdf
//! (`default-features = false`, no HTML mode) as an A4 portrait document.
//!
//! * text is drawn with an embedded DejaVu Sans (regular + bold, shipped in `assets/fonts/` under the
//!   Bitstream Vera / DejaVu license, `assets/fonts/LICENSE-DejaVu.txt`), so Latin, Greek, Cyrillic,
//!   "€", "–", … render and stay extractable (`pdftotext`) through the ToUnicode map printpdf writes;
//!   characters the font lacks (e.g. CJK) are drawn as `?`, never as invisible `.notdef` glyphs;
//! * the embedded fonts are subset per document with the `subsetter` crate (typst's), which
//!   replaced the prototype's hand-written TrueType subsetter: a PDF is tens of kB, not ~1.5 MB;
//! * charts are vector graphics (`chart.rs`), tables paginate with a repeated header row
//!   (`table.rs`), and every page gets a "title — Page N of M" footer (`render.rs`).
//!
//! `document.rs` maps the format-neutral report model onto the renderer's [`ReportDocument`].

mod axis;
mod canvas;
mod chart;
mod document;
mod layout;
mod model;
mod render;
mod summary;
mod table;
mod text;

pub use document::{ExportDocument, export_document, report_document};
pub use model::{Chart, ChartKind, Column, PdfError, ReportDocument, Series, Table};
pub use render::render_pdf;
