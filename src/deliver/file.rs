//! report/export -> **file**: where an output goes and how it is written.
//!
//! [`OutputPath`] confines a job's `output_path` to the reports folder (`EVENTMILL_REPORTS_DIR`):
//! absolute paths, `..` components and symlinks that lead outside are rejected before any work.
//! [`AtomicFile`] writes a temp file in the target's folder, fsyncs it and renames it over the
//! target, so readers see the old file or the whole new one; a failed or dropped write removes
//! the temp file and leaves no partial output.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::{Component, Path, PathBuf},
};

use chrono::{DateTime, NaiveDate, Utc};

/// An output path the job may not use.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("output_path {0:?} is absolute; give a path relative to the reports folder")]
    Absolute(String),
    #[error("output_path {0:?} leaves the reports folder")]
    Escapes(String),
    #[error("output_path {0:?} does not name a file")]
    NotAFile(String),
    #[error("cannot prepare the reports folder {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A file path inside the reports folder, checked and with its parent folders created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPath {
    full: PathBuf,
}

impl OutputPath {
    /// Resolves `requested` (relative to `reports_dir`; a trailing `/` means "a folder, default
    /// name inside") or, when absent, `default_name` directly in the reports folder.
    pub fn resolve(reports_dir: &Path, requested: Option<&str>, default_name: &str) -> Result<Self, PathError> {
        let requested = requested.map(str::trim).filter(|r| !r.is_empty());
        let relative = match requested {
            None => PathBuf::from(default_name),
            Some(r) => {
                let mut relative = checked_relative(r)?;
                if r.ends_with('/') || relative.as_os_str().is_empty() {
                    relative.push(default_name);
                }
                relative
            }
        };
        let shown = requested.unwrap_or(default_name);
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| PathError::Io { path, source }
        };
        fs::create_dir_all(reports_dir).map_err(io_err(reports_dir))?;
        let base = reports_dir.canonicalize().map_err(io_err(reports_dir))?;
        let file_name = relative.file_name().ok_or_else(|| PathError::NotAFile(shown.to_owned()))?.to_owned();
        let parent = ensure_folders_inside(&base, relative.parent().unwrap_or(Path::new("")), shown)?;
        let full = parent.join(file_name);
        if full.is_dir() {
            return Err(PathError::NotAFile(shown.to_owned()));
        }
        Ok(Self { full })
    }

    pub fn path(&self) -> &Path {
        &self.full
    }
}

/// The components of a relative path without `.`; refuses roots, prefixes and `..`.
fn checked_relative(requested: &str) -> Result<PathBuf, PathError> {
    let mut relative = PathBuf::new();
    for component in Path::new(requested).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathError::Escapes(requested.to_owned())),
            Component::RootDir | Component::Prefix(_) => return Err(PathError::Absolute(requested.to_owned())),
        }
    }
    Ok(relative)
}

/// Walks `folders` below `base`, following existing entries only where they (symlinks resolved)
/// stay inside `base`, and creating the missing ones. Returns the resolved folder.
fn ensure_folders_inside(base: &Path, folders: &Path, shown: &str) -> Result<PathBuf, PathError> {
    let mut current = base.to_owned();
    for part in folders.components() {
        let next = current.join(part);
        match fs::symlink_metadata(&next) {
            Ok(_) => {
                let resolved = next.canonicalize().map_err(|source| PathError::Io { path: next.clone(), source })?;
                if !resolved.starts_with(base) {
                    return Err(PathError::Escapes(shown.to_owned()));
                }
                if !resolved.is_dir() {
                    return Err(PathError::NotAFile(shown.to_owned()));
                }
                current = resolved;
            }
            Err(_) => {
                fs::create_dir(&next).map_err(|source| PathError::Io { path: next.clone(), source })?;
                current = next;
            }
        }
    }
    Ok(current)
}

/// `revenue-summary_2026-03-07_2026-03-09_20261123T170500Z.pdf`: what, which period, when.
pub fn default_file_name(what: &str, start: NaiveDate, end: NaiveDate, at: DateTime<Utc>, extension: &str) -> String {
    format!("{what}_{start}_{end}_{}.{extension}", at.format("%Y%m%dT%H%M%SZ"))
}

/// A file being written: a temp file beside the target until [`AtomicFile::commit`].
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temp file (`.<name>.<random>.tmp`) in the target's folder.
    pub fn create(target: &OutputPath) -> io::Result<Self> {
        let target = target.path().to_owned();
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = target.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let file = File::options().write(true).create_new(true).open(&temp)?;
        Ok(Self { target, temp, writer: Some(BufWriter::with_capacity(256 * 1024, file)) })
    }

    /// Flushes, fsyncs and renames the temp file over the target; returns the file size.
    pub fn commit(mut self) -> io::Result<u64> {
        let writer = self.writer.take().expect("writer present until commit");
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        drop(file);
        fs::rename(&self.temp, &self.target)?;
        if let Some(folder) = self.target.parent() {
            // Makes the rename itself durable; not every platform can open a folder, hence `ok()`.
            File::open(folder).and_then(|f| f.sync_all()).ok();
        }
        Ok(size)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("writer present until commit").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("writer present until commit").flush()
    }
}

impl Drop for AtomicFile {
    /// Removes the temp file unless it was renamed (a failed or abandoned write leaves nothing).
    fn drop(&mut self) {
        drop(self.writer.take());
        let _ = fs::remove_file(&self.temp);
    }
}

/// Writes `bytes` to `target` atomically; returns the size.
pub fn write_atomic(target: &OutputPath, bytes: &[u8]) -> io::Result<u64> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_named_in_the_error() {
        assert!(matches!(checked_relative("../x.csv"), Err(PathError::Escapes(_))));
        assert!(matches!(checked_relative("a/../../x.csv"), Err(PathError::Escapes(_))));
        assert!(matches!(checked_relative("/etc/x"), Err(PathError::Absolute(_))));
        assert_eq!(checked_relative("./weekly/x.pdf").unwrap(), PathBuf::from("weekly/x.pdf"));
    }

    #[test]
    fn default_names_say_what_and_when() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-23T17:05:00Z").unwrap().to_utc();
        assert_eq!(
            default_file_name("revenue-summary", day(7), day(9), at, "pdf"),
            "revenue-summary_2026-03-07_2026-03-09_20261123T170500Z.pdf"
        );
    }
}
