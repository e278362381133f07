//! Tables that break across pages.
//!
//! The bold, shaded header row is repeated at the top of every page a table
//! continues on (under a "(continued)" title); cells are truncated with "…"
//! to their column width; rows alternate with a light zebra background.

use super::canvas::{Align, Canvas, TextStyle};
use super::layout::{CONTENT_WIDTH, Flow, MARGIN_X, theme};
use super::model::{Column, Table};
use super::text::{Face, Weight};

const FONT_SIZE: f32 = 8.0;
const ROW_HEIGHT: f32 = 14.0;
const HEADER_HEIGHT: f32 = 18.0;
const CELL_PAD: f32 = 4.0;
/// Rows that must fit under the header before a table may start on a page.
const MIN_ROWS_WITH_HEADER: f32 = 3.0;

/// Horizontal placement of one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnBox {
    pub x: f32,
    pub width: f32,
    pub align_right: bool,
}

impl ColumnBox {
    /// Inner width available to text.
    fn text_width(&self) -> f32 {
        (self.width - 2.0 * CELL_PAD).max(0.0)
    }

    /// Anchor x and alignment for text in this column.
    fn anchor(&self) -> (f32, Align) {
        if self.align_right { (self.x + self.width - CELL_PAD, Align::Right) } else { (self.x + CELL_PAD, Align::Left) }
    }
}

/// Splits `total` width among `columns` proportionally to their weights
/// (non-positive or non-finite weights count as 1).
pub fn column_boxes(columns: &[Column], left: f32, total: f32) -> Vec<ColumnBox> {
    let weight = |c: &Column| {
        if c.width_weight.is_finite() && c.width_weight > 0.0 { c.width_weight } else { 1.0 }
    };
    let sum: f32 = columns.iter().map(weight).sum();
    let mut x = left;
    columns
        .iter()
        .map(|c| {
            let width = total * weight(c) / sum;
            let column = ColumnBox { x, width, align_right: c.align_right };
            x += width;
            column
        })
        .collect()
}

/// Draws `table` as the next blocks of `flow`, starting new pages as needed.
pub fn draw(flow: &mut Flow<'_>, table: &Table) {
    let keep = HEADER_HEIGHT + ROW_HEIGHT * MIN_ROWS_WITH_HEADER.min(table.rows.len().max(1) as f32);
    flow.heading(&table.title, keep);
    if table.columns.is_empty() {
        empty_message(flow, "No columns");
        return;
    }
    let boxes = column_boxes(&table.columns, MARGIN_X, CONTENT_WIDTH);
    draw_header(flow, &table.columns, &boxes);
    if table.rows.is_empty() {
        empty_message(flow, "No rows");
    }
    for (index, row) in table.rows.iter().enumerate() {
        if flow.ensure(ROW_HEIGHT) {
            flow.heading(&format!("{} (continued)", table.title), keep);
            draw_header(flow, &table.columns, &boxes);
        }
        draw_row(flow, row, &boxes, index % 2 == 1);
    }
    let y = flow.y();
    flow.canvas().line((MARGIN_X, y), (MARGIN_X + CONTENT_WIDTH, y), 0.6, theme::RULE);
    flow.advance(18.0);
}

fn empty_message(flow: &mut Flow<'_>, text: &str) {
    let style = TextStyle::new(Weight::Regular, FONT_SIZE, theme::MUTED);
    let baseline = flow.y() + ROW_HEIGHT / 2.0 + FONT_SIZE * 0.35;
    flow.canvas().text(MARGIN_X + CELL_PAD, baseline, text, style, Align::Left);
    flow.advance(ROW_HEIGHT);
}

fn draw_header(flow: &mut Flow<'_>, columns: &[Column], boxes: &[ColumnBox]) {
    let face = flow.face(Weight::Bold);
    let y = flow.y();
    let canvas = flow.canvas();
    canvas.fill_rect(MARGIN_X, y, CONTENT_WIDTH, HEADER_HEIGHT, theme::HEADER_BG);
    let style = TextStyle::new(Weight::Bold, FONT_SIZE, theme::TEXT);
    let cells = columns.iter().map(|c| c.header.as_str());
    draw_cells(canvas, face, cells, boxes, y, HEADER_HEIGHT, style);
    let bottom = y + HEADER_HEIGHT;
    canvas.line((MARGIN_X, bottom), (MARGIN_X + CONTENT_WIDTH, bottom), 0.8, theme::MUTED);
    flow.advance(HEADER_HEIGHT);
}

fn draw_row(flow: &mut Flow<'_>, row: &[String], boxes: &[ColumnBox], zebra: bool) {
    let face = flow.face(Weight::Regular);
    let y = flow.y();
    let canvas = flow.canvas();
    if zebra {
        canvas.fill_rect(MARGIN_X, y, CONTENT_WIDTH, ROW_HEIGHT, theme::ZEBRA);
    }
    let style = TextStyle::new(Weight::Regular, FONT_SIZE, theme::TEXT);
    let cells = row.iter().map(String::as_str);
    draw_cells(canvas, face, cells, boxes, y, ROW_HEIGHT, style);
    flow.advance(ROW_HEIGHT);
}

/// Draws one line of cells vertically centered in a band of `height` at `top`.
fn draw_cells<'c>(
    canvas: &mut Canvas<'_>,
    face: &Face,
    cells: impl Iterator<Item = &'c str>,
    boxes: &[ColumnBox],
    top: f32,
    height: f32,
    style: TextStyle,
) {
    // Centers the cap height (~0.73 em for DejaVu Sans) in the band.
    let baseline = top + (height + FONT_SIZE * 0.73) / 2.0;
    for (cell, column) in cells.zip(boxes) {
        let text = face.fit(cell, style.size, column.text_width());
        let (x, align) = column.anchor();
        canvas.text(x, baseline, &text, style, align);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(weight: f32) -> Column {
        Column { header: "h".into(), align_right: false, width_weight: weight }
    }

    #[test]
    fn widths_follow_weights() {
        let boxes = column_boxes(&[column(1.0), column(3.0), column(0.0)], 10.0, 500.0);
        assert_eq!(boxes[0].width, 100.0);
        assert_eq!(boxes[1].x, 110.0);
        assert_eq!(boxes[1].width, 300.0);
        assert_eq!(boxes[2].width, 100.0);
    }
}
