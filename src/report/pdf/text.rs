//! Embedded fonts and text measurement.
//!
//! Widths come from the TrueType `hmtx` advances that printpdf's
//! [`ParsedFont`] exposes. printpdf writes text without kerning, so the sum
//! of advances is exactly the width a viewer draws.

use std::sync::OnceLock;

use printpdf::ParsedFont;

use super::model::PdfError;

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/LICENSE-DejaVu.txt`).
pub const REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold.
pub const BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Drawn in place of characters the font has no glyph for.
pub const REPLACEMENT: char = '?';
/// Appended to truncated text.
pub const ELLIPSIS: char = '…';

/// Font weight of a text run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// One parsed font face.
#[derive(Debug, Clone)]
pub struct Face {
    /// PostScript-style name used for `/BaseFont`.
    pub name: &'static str,
    /// The raw TTF the face was parsed from.
    pub bytes: &'static [u8],
    /// printpdf's parsed face (cmap + advances).
    pub parsed: ParsedFont,
}

impl Face {
    /// Parses a TrueType face.
    pub fn load(name: &'static str, bytes: &'static [u8]) -> Result<Self, PdfError> {
        let mut warnings = Vec::new();
        let parsed = ParsedFont::from_bytes(bytes, 0, &mut warnings)
            .ok_or_else(|| PdfError::Font(format!("{name}: {warnings:?}")))?;
        Ok(Self { name, bytes, parsed })
    }

    /// Whether the face has a glyph for `c`.
    pub fn has_char(&self, c: char) -> bool {
        self.parsed.lookup_glyph_index(u32::from(c)).is_some_and(|gid| gid != 0)
    }

    /// The character actually drawn for `c`: whitespace controls become spaces,
    /// characters without a glyph become [`REPLACEMENT`].
    pub fn drawable(&self, c: char) -> char {
        if c.is_whitespace() {
            ' '
        } else if c.is_control() || !self.has_char(c) {
            REPLACEMENT
        } else {
            c
        }
    }

    /// `text` with every character mapped through [`Face::drawable`].
    pub fn sanitize(&self, text: &str) -> String {
        text.chars().map(|c| self.drawable(c)).collect()
    }

    /// Advance width of `c` in em.
    pub fn advance_em(&self, c: char) -> f32 {
        let c = self.drawable(c);
        let font = &self.parsed;
        let gid = font.lookup_glyph_index(u32::from(c)).unwrap_or(0);
        let units = font.get_glyph_width(gid).unwrap_or(0);
        f32::from(units) / f32::from(font.units_per_em.max(1))
    }

    /// Width of `text` in points at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance_em(c)).sum::<f32>() * size
    }

    /// `text` shortened with a trailing "…" so it is at most `max_width` wide.
    /// Returns an empty string when not even the ellipsis fits.
    pub fn fit(&self, text: &str, size: f32, max_width: f32) -> String {
        if self.width(text, size) <= max_width {
            return text.to_string();
        }
        let budget = max_width - self.advance_em(ELLIPSIS) * size;
        if budget < 0.0 {
            return String::new();
        }
        let mut used = 0.0;
        let mut out = String::new();
        for c in text.chars() {
            used += self.advance_em(c) * size;
            if used > budget {
                break;
            }
            out.push(c);
        }
        let trimmed_len = out.trim_end().len();
        out.truncate(trimmed_len);
        out.push(ELLIPSIS);
        out
    }

    /// Greedy word wrap of `text` into lines at most `max_width` wide; words
    /// longer than a line are truncated with "…".
    pub fn wrap(&self, text: &str, size: f32, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
            if self.width(&candidate, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line = self.fit(word, size, max_width);
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// The faces a report uses.
#[derive(Debug, Clone)]
pub struct Fonts {
    pub regular: Face,
    pub bold: Face,
}

impl Fonts {
    /// The embedded faces, parsed once per process.
    pub fn embedded() -> Result<&'static Fonts, PdfError> {
        static FONTS: OnceLock<Result<Fonts, PdfError>> = OnceLock::new();
        FONTS
            .get_or_init(|| {
                Ok(Fonts {
                    regular: Face::load("DejaVuSans", REGULAR_TTF)?,
                    bold: Face::load("DejaVuSans-Bold", BOLD_TTF)?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The face for `weight`.
    pub fn face(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular() -> &'static Face {
        &Fonts::embedded().unwrap().regular
    }

    #[test]
    fn covers_european_symbols() {
        for c in ['é', 'ü', '€', '–', '…', 'ß'] {
            assert!(regular().has_char(c), "{c}");
        }
        assert_eq!(regular().sanitize("日本\tx"), "?? x");
    }

    #[test]
    fn width_scales_with_size() {
        let w10 = regular().width("Revenue €", 10.0);
        assert!(w10 > 30.0 && w10 < 60.0, "{w10}");
        assert!((regular().width("Revenue €", 20.0) - 2.0 * w10).abs() < 1e-3);
    }

    #[test]
    fn fit_truncates_with_ellipsis() {
        let face = regular();
        assert_eq!(face.fit("short", 8.0, 100.0), "short");
        let long = "A very long customer name that cannot fit";
        let cut = face.fit(long, 8.0, 60.0);
        assert!(cut.ends_with('…'), "{cut}");
        assert!(face.width(&cut, 8.0) <= 60.0);
        assert_eq!(face.fit(long, 8.0, 1.0), "");
    }

    #[test]
    fn wrap_respects_width() {
        let face = regular();
        let lines = face.wrap("one two three four five six seven eight", 10.0, 60.0);
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| face.width(l, 10.0) <= 60.0));
    }
}
