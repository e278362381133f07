//! One typed cell of a report table or KPI, and how each format spells it: exact numbers in CSV
//! and JSON, thousands separators and percentages for people in the PDF and e-mail.

use chrono::NaiveDate;

/// A typed report value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    /// Money in cents: sums of `numeric` amounts stay exact.
    Money(i64),
    /// A fraction (CTR, error rate, share, change); 4 decimals in CSV/JSON, a percentage in PDF.
    Ratio(f64),
    Date(NaiveDate),
    Text(String),
    /// No value (e.g. the first day's day-over-day change).
    Empty,
}

impl Value {
    /// `part / whole`, empty when `whole` is zero.
    pub fn ratio(part: f64, whole: f64) -> Self {
        if whole == 0.0 { Self::Empty } else { Self::Ratio(part / whole) }
    }

    /// Machine form for CSV: plain numbers, no separators, ISO dates.
    pub fn plain(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Money(cents) => money_plain(*cents),
            Self::Ratio(r) => format!("{r:.4}"),
            Self::Date(d) => d.to_string(),
            Self::Text(t) => t.clone(),
            Self::Empty => String::new(),
        }
    }

    /// JSON form: numbers as numbers (money in currency units, ratios rounded to 4 decimals).
    pub fn json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let number = |text: String| text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(J::Number);
        match self {
            Self::Int(n) => J::from(*n),
            Self::Money(cents) => number(money_plain(*cents)).unwrap_or(J::Null),
            Self::Ratio(r) => number(format!("{r:.4}")).unwrap_or(J::Null),
            Self::Date(d) => J::String(d.to_string()),
            Self::Text(t) => J::String(t.clone()),
            Self::Empty => J::Null,
        }
    }

    /// Human form: `365,720.19`, `20,000`, `3.89 %`.
    pub fn display(&self) -> String {
        match self {
            Self::Int(n) => group_thousands(&n.to_string()),
            Self::Money(cents) => {
                let plain = money_plain(*cents);
                let (int, frac) = plain.split_once('.').unwrap_or((&plain, "00"));
                format!("{}.{frac}", group_thousands(int))
            }
            Self::Ratio(r) => format!("{:.2} %", r * 100.0),
            Self::Date(d) => d.to_string(),
            Self::Text(t) => t.clone(),
            Self::Empty => "–".to_owned(),
        }
    }

    /// The value as a chart coordinate.
    pub fn as_f64(&self) -> f64 {
        match self {
            Self::Int(n) => *n as f64,
            Self::Money(cents) => *cents as f64 / 100.0,
            Self::Ratio(r) => *r,
            _ => f64::NAN,
        }
    }
}

/// `12345` cents -> `123.45`; `-5` -> `-0.05`.
fn money_plain(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `-1234567` -> `-1,234,567`.
fn group_thousands(digits: &str) -> String {
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits), |d| ("-", d));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_in_every_form() {
        assert_eq!(Value::Money(36_572_019).plain(), "365720.19");
        assert_eq!(Value::Money(36_572_019).display(), "365,720.19");
        assert_eq!(Value::Money(-5).plain(), "-0.05");
        assert_eq!(Value::Money(36_572_019).json(), serde_json::json!(365720.19));
    }

    #[test]
    fn ratios_are_rounded_to_four_decimals_and_shown_as_percentages() {
        assert_eq!(Value::Ratio(11.0 / 58.0).plain(), "0.1897");
        assert_eq!(Value::Ratio(11.0 / 58.0).display(), "18.97 %");
        assert_eq!(Value::ratio(1.0, 0.0), Value::Empty);
    }

    #[test]
    fn integers_get_thousands_separators_for_people() {
        assert_eq!(Value::Int(20_000).display(), "20,000");
        assert_eq!(Value::Int(-1_234_567).display(), "-1,234,567");
        assert_eq!(Value::Int(999).display(), "999");
    }
}
