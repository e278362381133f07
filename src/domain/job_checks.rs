//! Checks every job (file, CLI flags, schedule, admin form) passes before its kind parses it:
//! what would be accepted now and then fail, or do harm, when the job runs.

use std::path::{Component, Path};

use serde_json::{Map, Value};

/// Largest job file read: real ones are a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Deepest nesting of arrays and objects accepted in a job (real ones nest two levels).
pub const MAX_DEPTH: usize = 8;

/// Refuses nesting past [`MAX_DEPTH`], NUL characters (PostgreSQL cannot bind them), an
/// `output_path` that leaves the reports folder, and recipient strings that are not one address
/// (CR/LF could inject mail headers; a comma or semicolon hides several addresses in one entry).
pub fn check_hostile(fields: &Map<String, Value>) -> Result<(), String> {
    for (key, value) in fields {
        walk(value, key, 1)?;
    }
    let output = fields.get("output_path").or_else(|| fields.get("outputPath")).and_then(Value::as_str);
    if let Some(path) = output.filter(|p| leaves_folder(p)) {
        // Symlinks are checked again when the file is written: only then is the folder's state known.
        return Err(format!(
            "output_path {path:?} leaves the reports folder: give a path relative to it, without `..`"
        ));
    }
    let recipients = fields.get("recipient_email").or_else(|| fields.get("recipientEmail"));
    let addresses: Vec<&str> = match recipients {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(bad) = addresses.iter().find(|a| a.contains(['\r', '\n', ',', ';'])) {
        return Err(format!(
            "recipient_email {bad:?} is not one address: give each address as its own list entry, \
             without line breaks, commas or semicolons"
        ));
    }
    Ok(())
}

fn walk(value: &Value, path: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path} nests deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::String(s) if s.contains('\0') => Err(format!("{path} contains a NUL character")),
        Value::Array(items) => items.iter().try_for_each(|v| walk(v, path, depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            if k.contains('\0') {
                return Err(format!("a key in {path} contains a NUL character"));
            }
            walk(v, &format!("{path}.{k}"), depth + 1)
        }),
        _ => Ok(()),
    }
}

fn leaves_folder(path: &str) -> bool {
    Path::new(path).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check_hostile;

    fn check(value: serde_json::Value) -> Result<(), String> {
        check_hostile(value.as_object().unwrap())
    }

    #[test]
    fn hostile_values_are_refused_before_anything_runs() {
        for bad in ["a@example.com\r\nBcc: b@example.com", "a@example.com, b@example.com", "a@x.io;b@x.io"] {
            assert!(check(json!({"recipient_email": bad})).unwrap_err().contains("not one address"));
        }
        assert!(check(json!({"recipientEmail": ["ok@x.io", "a@x.io,b@x.io"]})).is_err());
        assert_eq!(check(json!({"recipient_email": "Ann <ann@example.com>"})), Ok(()));
        let mut deep = json!("x");
        for _ in 0..20 {
            deep = json!([deep]);
        }
        assert!(check(json!({"profile_ids": deep})).unwrap_err().contains("nests deeper"));
        assert!(check(json!({"profile_ids": ["a\u{0}b"]})).unwrap_err().contains("NUL"));
        assert!(check(json!({"filters": {"k\u{0}": 1}})).unwrap_err().contains("NUL"));
        for path in ["../x.csv", "/etc/x", "a/../../x"] {
            assert!(check(json!({"output_path": path})).unwrap_err().contains("leaves the reports folder"));
        }
        assert_eq!(check(json!({"output_path": "weekly/./revenue.pdf"})), Ok(()));
    }
}
