//! A job's data changed before it runs again (the board's "edit data", BullMQ's `job.updateData`
//! from Bull Board): only while the job is waiting, delayed, failed or cancelled, never while it
//! runs, and only if nobody changed it meanwhile; the edit leaves a line in the job's log.

use redis::AsyncCommands;

use super::{JobState, QueueError, scripts, store::Queue};

/// How an edit of a job's data went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEdit {
    /// The payload was replaced and the log line written.
    Edited,
    /// No job has this id (any more).
    NotFound,
    /// The job is in a state whose data may not change (running, finished, waiting for children).
    NotEditable(JobState),
    /// The job's payload is no longer the one the edit was made against (a processor's
    /// `update_data`, or another edit, came first): nothing was changed.
    Changed,
}

impl Queue {
    /// Job `id`'s payload as stored (the text an edit is made against); `None` without the job.
    pub async fn raw_payload(&self, id: &str) -> Result<Option<String>, QueueError> {
        Ok(self.redis.clone().hget(self.keys.job(id), "payload").await?)
    }

    /// Replaces job `id`'s payload by `payload` if it is still `was` and the job is waiting,
    /// delayed, failed or cancelled, appending `log_line` to its log, all in one script. The
    /// payload is stored as given: check it against its kind first (the board does).
    pub async fn edit_data(&self, id: &str, was: &str, payload: &str, log_line: &str) -> Result<DataEdit, QueueError> {
        let answer = scripts::edit_data(&mut self.redis.clone(), &self.keys, id, (payload, was, log_line)).await?;
        Ok(match answer.as_str() {
            "ok" => DataEdit::Edited,
            "missing" => DataEdit::NotFound,
            "changed" => DataEdit::Changed,
            state => {
                DataEdit::NotEditable(state.parse().map_err(|e: String| QueueError::Invalid(format!("job {id}: {e}")))?)
            }
        })
    }
}
