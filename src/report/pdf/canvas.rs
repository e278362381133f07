//! A thin drawing layer over printpdf operations.
//!
//! Coordinates are in points with the origin at the **top-left** of the page
//! (y grows downwards), which is how the layout code thinks; the conversion to
//! PDF's bottom-left origin happens here only.

use printpdf::{
    Color, FontId, Line, LinePoint, Op, PaintMode, PdfFontHandle, Point, Polygon, PolygonRing, Pt, Rgb, TextItem,
    WindingOrder,
};

use super::text::{Face, Fonts, Weight};

/// A4 portrait width in points.
pub const PAGE_WIDTH: f32 = 595.276;
/// A4 portrait height in points.
pub const PAGE_HEIGHT: f32 = 841.89;

/// An sRGB color with 0–255 components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb8(pub u8, pub u8, pub u8);

impl Rgb8 {
    fn to_pdf(self) -> Color {
        let c = |v: u8| f32::from(v) / 255.0;
        Color::Rgb(Rgb::new(c(self.0), c(self.1), c(self.2), None))
    }
}

/// Horizontal anchoring of a text run relative to its x coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// Font, size and color of a text run.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    pub weight: Weight,
    pub size: f32,
    pub color: Rgb8,
}

impl TextStyle {
    pub const fn new(weight: Weight, size: f32, color: Rgb8) -> Self {
        Self { weight, size, color }
    }
}

/// Fonts plus the ids printpdf assigned to them in the document.
#[derive(Debug, Clone, Copy)]
pub struct FontBook<'a> {
    pub fonts: &'a Fonts,
    pub regular_id: &'a FontId,
    pub bold_id: &'a FontId,
}

impl<'a> FontBook<'a> {
    pub fn face(&self, weight: Weight) -> &'a Face {
        self.fonts.face(weight)
    }

    fn id(&self, weight: Weight) -> &'a FontId {
        match weight {
            Weight::Regular => self.regular_id,
            Weight::Bold => self.bold_id,
        }
    }
}

/// The operations of one page under construction.
#[derive(Debug)]
pub struct Canvas<'a> {
    book: FontBook<'a>,
    ops: Vec<Op>,
}

impl<'a> Canvas<'a> {
    pub fn new(book: FontBook<'a>) -> Self {
        Self { book, ops: Vec::new() }
    }

    pub fn book(&self) -> FontBook<'a> {
        self.book
    }

    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// Draws `text` with its baseline at `y`, anchored at `x` per `align`.
    pub fn text(&mut self, x: f32, y: f32, text: &str, style: TextStyle, align: Align) {
        let face = self.book.face(style.weight);
        let text = face.sanitize(text);
        if text.trim().is_empty() {
            return;
        }
        let width = face.width(&text, style.size);
        let left = match align {
            Align::Left => x,
            Align::Center => x - width / 2.0,
            Align::Right => x - width,
        };
        let font = PdfFontHandle::External(self.book.id(style.weight).clone());
        self.ops.extend([
            Op::SetFillColor { col: style.color.to_pdf() },
            Op::StartTextSection,
            Op::SetFont { font, size: Pt(style.size) },
            Op::SetTextCursor { pos: point(left, y) },
            Op::ShowText { items: vec![TextItem::Text(text)] },
            Op::EndTextSection,
        ]);
    }

    /// Fills the rectangle whose top-left corner is (`x`, `y`).
    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Rgb8) {
        self.polygon(&[(x, y), (x + w, y), (x + w, y + h), (x, y + h)], color);
    }

    /// Fills a closed polygon.
    pub fn polygon(&mut self, points: &[(f32, f32)], color: Rgb8) {
        let ring = PolygonRing { points: line_points(points) };
        self.ops.extend([
            Op::SetFillColor { col: color.to_pdf() },
            Op::DrawPolygon {
                polygon: Polygon { rings: vec![ring], mode: PaintMode::Fill, winding_order: WindingOrder::NonZero },
            },
        ]);
    }

    /// Strokes a straight segment.
    pub fn line(&mut self, from: (f32, f32), to: (f32, f32), width: f32, color: Rgb8) {
        self.polyline(&[from, to], width, color);
    }

    /// Strokes an open polyline.
    pub fn polyline(&mut self, points: &[(f32, f32)], width: f32, color: Rgb8) {
        if points.len() < 2 {
            return;
        }
        self.ops.extend([
            Op::SetOutlineColor { col: color.to_pdf() },
            Op::SetOutlineThickness { pt: Pt(width) },
            Op::DrawLine { line: Line { points: line_points(points), is_closed: false } },
        ]);
    }
}

fn point(x: f32, y: f32) -> Point {
    Point { x: Pt(x), y: Pt(PAGE_HEIGHT - y) }
}

fn line_points(points: &[(f32, f32)]) -> Vec<LinePoint> {
    points.iter().map(|&(x, y)| LinePoint { p: point(x, y), bezier: false }).collect()
}
