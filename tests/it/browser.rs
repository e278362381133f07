//! Runs a browser scenario (`tests/browser/<name>.mjs`, real headless Chromium through playwright-core)
//! against a running TestApp, with its base URL and tokens, and returns whether it passed.

use std::path::PathBuf;

use crate::helpers::TestApp;

/// The read-only token the admin tests configure.
pub const READONLY_TOKEN: &str = "test-readonly-token";
/// The admin token every TestEnv configures.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Runs `node tests/browser/<name>.mjs` and panics with its output unless it exits 0.
pub async fn run_scenario(app: &TestApp, name: &str, env: &[(&str, &str)]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does)"
    );
    let screenshots =
        std::env::var("SCREENSHOT_DIR").unwrap_or_else(|_| browser_dir.join("screenshots").display().to_string());
    let output = tokio::process::Command::new("node")
        .arg(browser_dir.join(format!("{name}.mjs")))
        .env("EVENTMILL_BASE_URL", app.url(""))
        .env("EVENTMILL_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN)
        .env("SCREENSHOT_DIR", screenshots)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), output)
        .await
        .expect("the browser scenario ends within 2 minutes")
        .expect("node runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser scenario {name} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
}
