//! Page geometry, the shared color theme and the vertical page flow.

use printpdf::Op;

use super::canvas::{Align, Canvas, FontBook, PAGE_HEIGHT, PAGE_WIDTH, TextStyle};
use super::text::{Face, Weight};

/// Left and right page margin.
pub const MARGIN_X: f32 = 42.0;
/// Top page margin.
pub const MARGIN_TOP: f32 = 40.0;
/// Lowest y content may reach; the footer lives below.
pub const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - 48.0;
/// Usable width between the margins.
pub const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN_X;

/// Colors shared by all blocks.
pub mod theme {
    use super::super::canvas::Rgb8;

    pub const TEXT: Rgb8 = Rgb8(0x1f, 0x29, 0x37);
    pub const MUTED: Rgb8 = Rgb8(0x6b, 0x72, 0x80);
    pub const ACCENT: Rgb8 = Rgb8(0x25, 0x63, 0xeb);
    pub const RULE: Rgb8 = Rgb8(0xd1, 0xd5, 0xdb);
    pub const GRID: Rgb8 = Rgb8(0xe5, 0xe7, 0xeb);
    pub const CARD_BG: Rgb8 = Rgb8(0xf3, 0xf4, 0xf6);
    pub const HEADER_BG: Rgb8 = Rgb8(0xdb, 0xe3, 0xee);
    pub const ZEBRA: Rgb8 = Rgb8(0xf7, 0xf8, 0xfa);
    /// Series colors, cycled.
    pub const SERIES: [Rgb8; 6] = [
        Rgb8(0x25, 0x63, 0xeb),
        Rgb8(0xf5, 0x9e, 0x0b),
        Rgb8(0x10, 0xb9, 0x81),
        Rgb8(0xef, 0x44, 0x44),
        Rgb8(0x8b, 0x5c, 0xf6),
        Rgb8(0x06, 0xb6, 0xd4),
    ];
}

/// Vertical flow of blocks over pages.
#[derive(Debug)]
pub struct Flow<'a> {
    pages: Vec<Vec<Op>>,
    canvas: Canvas<'a>,
    y: f32,
}

impl<'a> Flow<'a> {
    pub fn new(book: FontBook<'a>) -> Self {
        Self { pages: Vec::new(), canvas: Canvas::new(book), y: MARGIN_TOP }
    }

    pub fn canvas(&mut self) -> &mut Canvas<'a> {
        &mut self.canvas
    }

    pub fn face(&self, weight: Weight) -> &'a Face {
        self.canvas.book().face(weight)
    }

    /// Current y (top of the next block).
    pub fn y(&self) -> f32 {
        self.y
    }

    pub fn advance(&mut self, dy: f32) {
        self.y += dy;
    }

    /// Whether the current page is still empty.
    pub fn at_page_top(&self) -> bool {
        self.y <= MARGIN_TOP
    }

    pub fn remaining(&self) -> f32 {
        CONTENT_BOTTOM - self.y
    }

    pub fn new_page(&mut self) {
        let fresh = Canvas::new(self.canvas.book());
        let page = std::mem::replace(&mut self.canvas, fresh);
        self.pages.push(page.into_ops());
        self.y = MARGIN_TOP;
    }

    /// Starts a new page unless `height` still fits; returns whether it did.
    pub fn ensure(&mut self, height: f32) -> bool {
        let break_needed = height > self.remaining() && !self.at_page_top();
        if break_needed {
            self.new_page();
        }
        break_needed
    }

    /// A bold section heading with some space below it.
    pub fn heading(&mut self, text: &str, keep_with_next: f32) {
        const SIZE: f32 = 12.0;
        self.ensure(SIZE + 8.0 + keep_with_next);
        let text = self.face(Weight::Bold).fit(text, SIZE, CONTENT_WIDTH);
        let style = TextStyle::new(Weight::Bold, SIZE, theme::TEXT);
        let baseline = self.y + SIZE;
        self.canvas.text(MARGIN_X, baseline, &text, style, Align::Left);
        self.y += SIZE + 8.0;
    }

    pub fn finish(self) -> Vec<Vec<Op>> {
        let mut pages = self.pages;
        pages.push(self.canvas.into_ops());
        pages
    }
}
