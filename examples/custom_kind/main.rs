//! An eventmill binary with a job kind of its own (`kind.rs`): the whole CLI, worker, scheduler
//! and admin, for eventmill's kinds and COUNT_EVENTS.
//!
//! ```text
//! cargo run --example custom_kind -- run
//! cargo run --example custom_kind -- enqueue COUNT_EVENTS date=today --wait
//! ```

mod kind;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    eventmill::commands::main(kind::registry()).await
}
