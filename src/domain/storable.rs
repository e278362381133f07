//! `check_storable`: the one place that decides whether JSON text the ingestion API was given can be
//! stored by PostgreSQL's `jsonb` (SPEC section 4: a 202 is a promise, so what PostgreSQL would
//! refuse at COPY time is refused at the door with a 422).
//!
//! The text has already been checked as JSON syntax (a `RawValue`), but serde_json does not look
//! inside string escapes of a raw value, and jsonb is stricter than JSON in three ways:
//! - `\u0000` cannot be stored (text in PostgreSQL never holds NUL), in keys or values;
//! - a lone UTF-16 surrogate escape (`\ud800` without its low half, or a low half alone) is not a
//!   character, so jsonb refuses the whole document;
//! - numbers become `numeric`, which holds at most 131,072 digits before the decimal point and
//!   16,383 after it (`1e200000` and `1e-20000` are valid JSON and overflow it).
//!
//! Self-contained on purpose: one linear pass over the bytes, no allocation, usable by any parser.

/// Largest decimal exponent of a number's leading digit that `numeric` holds (`1e131071`).
const MAX_NUMERIC_WEIGHT: i64 = 131_071;
/// Most digits after the decimal point that `numeric` holds.
const MAX_NUMERIC_SCALE: i64 = 16_383;

/// Checks syntactically valid JSON `text` for anything PostgreSQL's jsonb would refuse; the error
/// is the reason shown to the client.
pub fn check_storable(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        i = match bytes[i] {
            b'"' => after_string(bytes, i + 1)?,
            b'-' | b'0'..=b'9' => after_number(bytes, i)?,
            _ => i + 1,
        };
    }
    Ok(())
}

/// Scans a string body starting at `i` (just past the opening quote); returns the index past the
/// closing quote.
fn after_string(bytes: &[u8], mut i: usize) -> Result<usize, String> {
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok(i + 1),
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex4(bytes, i + 2);
                i += 6;
                match unit {
                    Some(0) => return Err("contains \\u0000, which PostgreSQL cannot store".to_owned()),
                    Some(0xD800..=0xDBFF) => {
                        let low = (bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u'))
                            .then(|| hex4(bytes, i + 2))
                            .flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Err(lone_surrogate(unit));
                        }
                        i += 6;
                    }
                    Some(0xDC00..=0xDFFF) => return Err(lone_surrogate(unit)),
                    _ => {}
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Ok(i)
}

fn lone_surrogate(unit: Option<u16>) -> String {
    format!(
        "contains a lone UTF-16 surrogate \\u{:04x}, which is not a character (PostgreSQL refuses it); \
         send the character itself or its full surrogate pair",
        unit.unwrap_or_default()
    )
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Scans a number starting at `start`; returns the index past it, or the reason `numeric` cannot
/// hold it.
fn after_number(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + usize::from(bytes[start] == b'-');
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        &bytes[from..*i]
    };
    let integer = digits(&mut i);
    let fraction = if bytes.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i)
    } else {
        &[]
    };
    let mut exponent: i64 = 0;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        let negative = bytes.get(i) == Some(&b'-');
        i += usize::from(matches!(bytes.get(i), Some(b'-' | b'+')));
        for &d in digits(&mut i) {
            // Saturates far past the limits below: the exact value no longer matters.
            exponent = (exponent * 10 + i64::from(d - b'0')).min(i64::from(i32::MAX));
        }
        if negative {
            exponent = -exponent;
        }
    }
    let scale = fraction.len() as i64 - exponent;
    let leading = integer.iter().chain(fraction).position(|&d| d != b'0');
    let weight = leading.map(|at| integer.len() as i64 - 1 - at as i64 + exponent);
    if scale > MAX_NUMERIC_SCALE || weight.is_some_and(|w| w > MAX_NUMERIC_WEIGHT) {
        let text = String::from_utf8_lossy(&bytes[start..i.min(start + 40)]);
        return Err(format!(
            "contains the number {text}, beyond what PostgreSQL's numeric holds \
             (131,072 digits before the decimal point, 16,383 after)"
        ));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::check_storable;

    #[test]
    fn what_postgresql_stores_passes() {
        for ok in [
            r#"{"a":"\ud83d\ude00","b":"\\u0000","c":"\u00e9\n","d":[1,-2.5e3,0e-9,1e131071,1e-16383]}"#,
            r#"{"\"quoted\"":"\\\\","n":0e200000,"m":0.1e131072,"x":"\uD83D\uDE00"}"#,
            r#""""#,
        ] {
            assert_eq!(check_storable(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn what_postgresql_refuses_is_named() {
        for (bad, word) in [
            (r#"{"a":"\u0000"}"#, "\\u0000"),
            (r#"{"x\u0000y":1}"#, "\\u0000"),
            (r#"{"a":"\ud800"}"#, "surrogate \\ud800"),
            (r#"{"\ud800":1}"#, "surrogate"),
            (r#"{"a":"\uDC00\uD800"}"#, "surrogate \\udc00"),
            (r#"{"a":"\uD800\u0041"}"#, "surrogate \\ud800"),
            (r#"{"a":"\\\ud800"}"#, "surrogate"),
            (r#"{"a":1e131072}"#, "numeric"),
            (r#"{"a":10e131071}"#, "numeric"),
            (r#"{"a":1.5e-16383}"#, "numeric"),
            (r#"{"a":0.0e-16383}"#, "numeric"),
            (r#"{"a":-1e99999999999999999999}"#, "numeric"),
        ] {
            let reason = check_storable(bad).unwrap_err();
            assert!(reason.contains(word), "{bad}: {reason}");
        }
    }
}
