//! report/export -> **deliver**: where results go. `file` confines output paths to the reports
//! folder and writes atomically; `email` sends a written file with lettre over SMTP; `pending`
//! remembers a written-but-not-yet-mailed file so a retry only re-sends.

pub mod file;
pub mod email;
pub mod pending;

pub use email::{EmailError, Mail, Mailer};
pub use file::{AtomicFile, OutputPath, PathError, default_file_name, write_atomic};
pub use pending::PendingDelivery;
