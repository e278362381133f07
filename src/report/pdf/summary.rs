//! The page-1 blocks above the charts: title and period, KPI cards, notes.

use super::canvas::{Align, PAGE_WIDTH, TextStyle};
use super::layout::{CONTENT_WIDTH, Flow, MARGIN_X, theme};
use super::model::ReportDocument;
use super::text::Weight;

/// Title, period and generation time, underlined.
pub fn draw_title_block(flow: &mut Flow<'_>, doc: &ReportDocument) {
    const TITLE: f32 = 20.0;
    const META: f32 = 9.0;
    let bold = flow.face(Weight::Bold);
    let regular = flow.face(Weight::Regular);
    let title = bold.fit(&doc.title, TITLE, CONTENT_WIDTH);
    let y = flow.y();
    let canvas = flow.canvas();
    canvas.text(MARGIN_X, y + TITLE, &title, TextStyle::new(Weight::Bold, TITLE, theme::TEXT), Align::Left);

    let meta = TextStyle::new(Weight::Regular, META, theme::MUTED);
    let generated = match doc.generated_at.trim() {
        "" => String::new(),
        at => regular.fit(&format!("Generated {at}"), META, CONTENT_WIDTH / 2.0),
    };
    let period = match doc.period.trim() {
        "" => String::new(),
        period => {
            let room = CONTENT_WIDTH - regular.width(&generated, META) - 16.0;
            regular.fit(&format!("Period: {period}"), META, room)
        }
    };
    let meta_y = y + TITLE + 16.0;
    canvas.text(MARGIN_X, meta_y, &period, meta, Align::Left);
    canvas.text(PAGE_WIDTH - MARGIN_X, meta_y, &generated, meta, Align::Right);
    let rule_y = meta_y + 8.0;
    canvas.line((MARGIN_X, rule_y), (PAGE_WIDTH - MARGIN_X, rule_y), 1.5, theme::ACCENT);
    flow.advance(rule_y - y + 16.0);
}

/// KPI cards, up to four per row.
pub fn draw_kpis(flow: &mut Flow<'_>, kpis: &[(String, String)]) {
    const CARD_H: f32 = 50.0;
    const GAP: f32 = 10.0;
    if kpis.is_empty() {
        return;
    }
    let per_row = match kpis.len() {
        n @ 1..=4 => n,
        5 | 6 | 9 => 3,
        _ => 4,
    };
    let card_w = (CONTENT_WIDTH - GAP * (per_row - 1) as f32) / per_row as f32;
    for row in kpis.chunks(per_row) {
        flow.ensure(CARD_H);
        let y = flow.y();
        for (i, (label, value)) in row.iter().enumerate() {
            let x = MARGIN_X + i as f32 * (card_w + GAP);
            draw_kpi_card(flow, (x, y, card_w, CARD_H), label, value);
        }
        flow.advance(CARD_H + GAP);
    }
    flow.advance(6.0);
}

fn draw_kpi_card(flow: &mut Flow<'_>, (x, y, w, h): (f32, f32, f32, f32), label: &str, value: &str) {
    const PAD: f32 = 10.0;
    const LABEL: f32 = 8.0;
    let inner = w - 2.0 * PAD;
    let label = flow.face(Weight::Regular).fit(label, LABEL, inner);
    let bold = flow.face(Weight::Bold);
    // Shrink long values before resorting to truncation.
    let size = [16.0, 14.0, 12.0, 10.0].into_iter().find(|&s| bold.width(value, s) <= inner).unwrap_or(10.0);
    let value = bold.fit(value, size, inner);
    let canvas = flow.canvas();
    canvas.fill_rect(x, y, w, h, theme::CARD_BG);
    canvas.fill_rect(x, y, 3.0, h, theme::ACCENT);
    let label_style = TextStyle::new(Weight::Regular, LABEL, theme::MUTED);
    canvas.text(x + PAD, y + PAD + LABEL, &label, label_style, Align::Left);
    let value_style = TextStyle::new(Weight::Bold, size, theme::TEXT);
    canvas.text(x + PAD, y + h - PAD - 2.0, &value, value_style, Align::Left);
}

/// Bulleted, word-wrapped notes.
pub fn draw_notes(flow: &mut Flow<'_>, notes: &[String]) {
    const SIZE: f32 = 8.5;
    const LINE: f32 = 12.0;
    let face = flow.face(Weight::Regular);
    let style = TextStyle::new(Weight::Regular, SIZE, theme::MUTED);
    let indent = face.width("•  ", SIZE);
    for note in notes {
        let lines = face.wrap(note, SIZE, CONTENT_WIDTH - indent);
        for (i, line) in lines.iter().enumerate() {
            flow.ensure(LINE);
            let baseline = flow.y() + SIZE;
            if i == 0 {
                flow.canvas().text(MARGIN_X, baseline, "•", style, Align::Left);
            }
            flow.canvas().text(MARGIN_X + indent, baseline, line, style, Align::Left);
            flow.advance(LINE);
        }
    }
    if !notes.is_empty() {
        flow.advance(10.0);
    }
}
