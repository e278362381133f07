//! report file -> **delivery pending** -> e-mail: a marker per job that wrote its file but has not
//! yet e-mailed it. A retry of the job finds the marker, checks the file is still there and only
//! re-sends; the computation is not repeated. Markers live in `<reports>/.pending/<job id>.json`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use super::email::Mail;

/// The marker of one job.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    marker: PathBuf,
}

impl PendingDelivery {
    /// The marker location of `job_id` (characters outside `[A-Za-z0-9_-]` become `_`).
    pub fn for_job(reports_dir: &Path, job_id: &str) -> Self {
        let safe: String =
            job_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        Self { marker: reports_dir.join(".pending").join(format!("{safe}.json")) }
    }

    /// The mail a previous attempt left to send, if its file still exists.
    pub fn load(&self) -> Option<Mail> {
        let text = fs::read_to_string(&self.marker).ok()?;
        let mail: Mail = serde_json::from_str(&text).ok()?;
        mail.attachment.is_file().then_some(mail)
    }

    /// Records that `mail` is still to be sent (written atomically).
    pub fn save(&self, mail: &Mail) -> io::Result<()> {
        let folder = self.marker.parent().expect("marker has a folder");
        fs::create_dir_all(folder)?;
        let temp = self.marker.with_extension("json.tmp");
        fs::write(&temp, serde_json::to_vec(mail).map_err(io::Error::other)?)?;
        fs::rename(&temp, &self.marker)
    }

    /// Removes the marker once the mail is delivered (or is given up on).
    pub fn clear(&self) {
        let _ = fs::remove_file(&self.marker);
    }
}
