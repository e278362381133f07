//! `eventmill`: the program for eventmill's own job kinds (`commands::main` parses the command
//! line, starts telemetry, loads settings and dispatches).

use std::process::ExitCode;

use eventmill::{commands, processors};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    commands::main(processors::registry()).await
}
