//! Assembly of the PDF: page layout, footers, font subsetting (the `subsetter` crate), serialization.

use std::collections::{BTreeMap, BTreeSet};

use printpdf::{
    FontId, Mm, Op, PdfDocument, PdfFont, PdfFontHandle, PdfPage, PdfParseErrorSeverity, PdfSaveOptions, TextItem,
};

use super::canvas::{Align, Canvas, FontBook, PAGE_HEIGHT, PAGE_WIDTH, TextStyle};
use super::layout::{CONTENT_WIDTH, Flow, MARGIN_X, theme};
use super::model::{PdfError, ReportDocument};
use super::text::{Face, Fonts, Weight};
use super::{chart, summary, table};

/// Renders `doc` as an A4 portrait PDF.
pub fn render_pdf(doc: &ReportDocument) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::embedded()?;
    // Fixed ids (instead of `PdfDocument::add_font`'s random ones) keep the
    // output byte-for-byte reproducible.
    let regular_id = FontId("F1".into());
    let bold_id = FontId("F2".into());
    let book = FontBook { fonts, regular_id: &regular_id, bold_id: &bold_id };

    let mut pages = layout_pages(book, doc);
    add_footers(book, &mut pages, &doc.title);

    let mut pdf = PdfDocument::new(&doc.title);
    let used = used_chars(&pages);
    for (id, face) in [(regular_id, &fonts.regular), (bold_id, &fonts.bold)] {
        let chars = used.get(&id).cloned().unwrap_or_default();
        pdf.resources.fonts.map.insert(id, subset_font(face, &chars)?);
    }
    let pages = pages.into_iter().map(|ops| PdfPage::new(Mm(210.0), Mm(297.0), ops)).collect();
    let mut warnings = Vec::new();
    let bytes = pdf.with_pages(pages).save(&PdfSaveOptions::default(), &mut warnings);
    let errors: Vec<_> =
        warnings.iter().filter(|w| w.severity == PdfParseErrorSeverity::Error).map(|w| w.msg.as_str()).collect();
    if errors.is_empty() { Ok(bytes) } else { Err(PdfError::Serialize(errors.join("; "))) }
}

fn layout_pages<'a>(book: FontBook<'a>, doc: &ReportDocument) -> Vec<Vec<Op>> {
    let mut flow = Flow::new(book);
    summary::draw_title_block(&mut flow, doc);
    summary::draw_kpis(&mut flow, &doc.kpis);
    summary::draw_notes(&mut flow, &doc.notes);
    for chart in &doc.charts {
        chart::draw(&mut flow, chart);
    }
    for table in &doc.tables {
        table::draw(&mut flow, table);
    }
    flow.finish()
}

/// Appends "title … Page N of M" to every page.
fn add_footers(book: FontBook<'_>, pages: &mut [Vec<Op>], title: &str) {
    const SIZE: f32 = 8.0;
    let total = pages.len();
    let style = TextStyle::new(Weight::Regular, SIZE, theme::MUTED);
    let rule_y = PAGE_HEIGHT - 34.0;
    let baseline = PAGE_HEIGHT - 22.0;
    let right = PAGE_WIDTH - MARGIN_X;
    for (index, ops) in pages.iter_mut().enumerate() {
        let mut canvas = Canvas::new(book);
        let label = format!("Page {} of {total}", index + 1);
        let label_width = book.face(Weight::Regular).width(&label, SIZE);
        let title = book.face(Weight::Regular).fit(title, SIZE, CONTENT_WIDTH - label_width - 20.0);
        canvas.line((MARGIN_X, rule_y), (right, rule_y), 0.5, theme::RULE);
        canvas.text(MARGIN_X, baseline, &title, style, Align::Left);
        canvas.text(right, baseline, &label, style, Align::Right);
        ops.extend(canvas.into_ops());
    }
}

/// `face` reduced to the glyphs of `chars` with the `subsetter` crate (typst's subsetter).
///
/// subsetter renumbers glyphs (kept glyphs become 1..n) and drops the font's `cmap`. printpdf
/// (without `text_layout`) encodes text, `/W` widths and the ToUnicode map from the face's
/// `codepoint_to_glyph` and `glyph_widths` maps and embeds `original_bytes` as is, so the subset
/// face is the original face with those two maps renumbered the same way: content-stream codes,
/// widths and ToUnicode all agree with the subset program (`CIDToGIDMap /Identity`).
fn subset_font(face: &Face, chars: &BTreeSet<char>) -> Result<PdfFont, PdfError> {
    let full = &face.parsed;
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut codepoint_to_glyph = BTreeMap::new();
    let mut glyph_widths = BTreeMap::new();
    for &c in chars {
        let Some(old) = full.lookup_glyph_index(u32::from(c)) else { continue };
        let new = remapper.remap(old);
        codepoint_to_glyph.insert(u32::from(c), new);
        glyph_widths.insert(new, full.get_glyph_width(old).unwrap_or(0));
    }
    glyph_widths.insert(0, full.get_glyph_width(0).unwrap_or(0));
    let bytes = subsetter::subset(face.bytes, 0, &remapper).map_err(|e| PdfError::Subset(e.to_string()))?;
    let gids: BTreeSet<u16> = codepoint_to_glyph.values().copied().collect();
    let mut parsed = full.clone();
    parsed.original_bytes = bytes;
    parsed.codepoint_to_glyph = codepoint_to_glyph;
    parsed.glyph_widths = glyph_widths;
    parsed.font_name = Some(format!("{}+{}", subset_tag(chars, &gids), face.name));
    Ok(PdfFont::new(parsed))
}

/// Characters shown per font across all pages.
fn used_chars(pages: &[Vec<Op>]) -> BTreeMap<FontId, BTreeSet<char>> {
    let mut used: BTreeMap<FontId, BTreeSet<char>> = BTreeMap::new();
    for ops in pages {
        let mut current = None;
        for op in ops {
            match op {
                Op::SetFont { font: PdfFontHandle::External(id), .. } => current = Some(id),
                Op::ShowText { items } => {
                    let Some(id) = current else { continue };
                    let set = used.entry(id.clone()).or_default();
                    for item in items {
                        if let TextItem::Text(text) = item {
                            set.extend(text.chars());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    used
}

/// The six-uppercase-letter subset tag (PDF 32000-1 §9.6.4), derived from the characters kept.
fn subset_tag(chars: &BTreeSet<char>, gids: &BTreeSet<u16>) -> String {
    let mut hash: u32 = 2_166_136_261;
    for value in chars.iter().map(|&c| u32::from(c)).chain(gids.iter().map(|&g| u32::from(g))) {
        hash = (hash ^ value).wrapping_mul(16_777_619);
    }
    (0..6).map(|i| char::from(b'A' + ((hash >> (i * 5)) % 26) as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pdf::{Column, Table};

    fn document(rows: usize) -> ReportDocument {
        ReportDocument {
            title: "Café Zoë – €".into(),
            period: "2026-03-07 to 2026-03-09 (UTC)".into(),
            generated_at: "2026-11-23 17:05 UTC".into(),
            kpis: vec![("Revenue".into(), "€365,720.19".into())],
            charts: Vec::new(),
            tables: vec![Table {
                title: "Rows".into(),
                columns: vec![Column { header: "Name".into(), align_right: false, width_weight: 1.0 }],
                rows: (0..rows).map(|i| vec![format!("Zürich {i}")]).collect(),
            }],
            notes: Vec::new(),
        }
    }

    #[test]
    fn fonts_are_embedded_as_small_subsets() {
        let pdf = render_pdf(&document(200)).unwrap();
        // The two DejaVu faces are ~1.5 MB whole; their subsets are a few kB each.
        assert!(pdf.len() < 80_000, "{} bytes", pdf.len());
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("+DejaVuSans") && text.contains("+DejaVuSans-Bold"));
    }

    #[test]
    fn the_subset_face_maps_every_used_character_to_a_renumbered_glyph() {
        let fonts = Fonts::embedded().unwrap();
        let chars: BTreeSet<char> = "Zürich €".chars().collect();
        let font = subset_font(&fonts.regular, &chars).unwrap();
        let parsed = &font.parsed_font;
        assert_eq!(parsed.codepoint_to_glyph.len(), chars.len());
        assert!(parsed.codepoint_to_glyph.values().all(|&gid| gid >= 1 && usize::from(gid) <= chars.len()));
        let full = &fonts.regular.parsed;
        let euro_full = full.get_glyph_width(full.lookup_glyph_index('€' as u32).unwrap());
        assert_eq!(parsed.get_glyph_width(parsed.lookup_glyph_index('€' as u32).unwrap()), euro_full);
    }
}
