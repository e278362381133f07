//! Checks every job (file, CLI fields, schedule, board form) passes before its kind parses it:
//! what would be accepted now and then fail, or do harm, when the job runs.

use serde_json::{Map, Value};

/// Largest job file read: real ones are a few hundred bytes.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Deepest nesting of arrays and objects accepted in a job (real ones nest two levels).
pub const MAX_DEPTH: usize = 8;

/// Refuses nesting past [`MAX_DEPTH`] and NUL characters (databases cannot bind them, and no
/// real job has one). What a kind refuses beyond its type is its processor's `check`.
pub fn check_hostile(fields: &Map<String, Value>) -> Result<(), String> {
    for (key, value) in fields {
        walk(value, key, 1)?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check_hostile;

    fn check(value: serde_json::Value) -> Result<(), String> {
        check_hostile(value.as_object().unwrap())
    }

    #[test]
    fn deep_nesting_and_nul_characters_are_refused_before_anything_runs() {
        let mut deep = json!("x");
        for _ in 0..20 {
            deep = json!([deep]);
        }
        assert!(check(json!({"profile_ids": deep})).unwrap_err().contains("nests deeper"));
        assert!(check(json!({"profile_ids": ["a\u{0}b"]})).unwrap_err().contains("NUL"));
        assert!(check(json!({"filters": {"k\u{0}": 1}})).unwrap_err().contains("NUL"));
        assert_eq!(check(json!({"output_path": "weekly/./revenue.pdf"})), Ok(()));
    }
}
