//! What the report and export kinds refuse before they are queued (their processors' `check`),
//! beyond what the framework refuses of every job (deep nesting, NUL characters): what would be
//! accepted now and then fail, or do harm, when the job runs.

use std::path::{Component, Path};

/// Refuses an `output_path` that leaves the reports folder (symlinks are checked again when the
/// file is written: only then is the folder's state known).
pub fn check_output_path(output: Option<&str>) -> Result<(), String> {
    match output.filter(|p| leaves_folder(p)) {
        Some(path) => {
            Err(format!("output_path {path:?} leaves the reports folder: give a path relative to it, without `..`"))
        }
        None => Ok(()),
    }
}

/// Refuses recipient strings that are not one address (CR/LF could inject mail headers; a comma
/// or semicolon hides several addresses in one entry).
pub fn check_recipients(addresses: &[String]) -> Result<(), String> {
    match addresses.iter().find(|a| a.contains(['\r', '\n', ',', ';'])) {
        Some(bad) => Err(format!(
            "recipient_email {bad:?} is not one address: give each address as its own list entry, \
             without line breaks, commas or semicolons"
        )),
        None => Ok(()),
    }
}

fn leaves_folder(path: &str) -> bool {
    Path::new(path).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::{check_output_path, check_recipients};

    #[test]
    fn hostile_values_are_refused_before_anything_runs() {
        for bad in ["a@example.com\r\nBcc: b@example.com", "a@example.com, b@example.com", "a@x.io;b@x.io"] {
            assert!(check_recipients(&[bad.into()]).unwrap_err().contains("not one address"));
        }
        assert!(check_recipients(&["ok@x.io".into(), "a@x.io,b@x.io".into()]).is_err());
        assert_eq!(check_recipients(&["Ann <ann@example.com>".into()]), Ok(()));
        for path in ["../x.csv", "/etc/x", "a/../../x"] {
            assert!(check_output_path(Some(path)).unwrap_err().contains("leaves the reports folder"));
        }
        assert_eq!(check_output_path(Some("weekly/./revenue.pdf")), Ok(()));
    }
}
