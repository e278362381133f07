//! The schedules board in real Chromium (issue 21's "done when"): a run-time schedule added from
//! the page, paused: a scheduler running beside the app skips its tick and the ledger shows the
//! skipped tick with its reason "paused"; times for people with the exact UTC time in the title;
//! resumed, its ticks enqueue again; removed after confirmation. `tests/browser/schedule-ledger.mjs`.
//! And the `eventmill` binary's `schedules add|list|show|pause|resume|remove` with their errors.

use std::{path::Path, sync::Arc};

use eventmill::{
    scheduler::{self, Scheduler, config},
    shutdown::Shutdown,
};

use crate::{
    browser::{READONLY_TOKEN, run_scenario},
    helpers::{TestApp, TestEnv},
};

#[tokio::test]
async fn a_paused_schedule_skips_its_tick_and_the_ledger_shows_why_in_the_browser() {
    let file = std::env::temp_dir().join(format!("em-admin-ledger-{}.toml", uuid::Uuid::new_v4().simple()));
    let toml = "[[schedule]]\nname = \"nightly-rollup\"\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Berlin\"\n\
                job = { job_type = \"DAILY_ROLLUP\", date = \"yesterday\" }\n";
    std::fs::write(&file, toml).unwrap();
    let env = TestEnv::with(&[
        ("EVENTMILL_READONLY_TOKEN", READONLY_TOKEN),
        ("EVENTMILL_SCHEDULER_FILE", file.to_str().unwrap()),
    ])
    .await;
    let app = TestApp::api(env).await;
    // A scheduler process beside the app (as `eventmill worker` runs one): it picks up the
    // schedule the page adds within 2 s, and honours its pause.
    let resources = &app.env.resources;
    let schedules = config::parse(toml, Path::new("."), resources.queues.catalog()).unwrap();
    let scheduler = Arc::new(Scheduler::new(schedules, resources.queues.clone(), app.env.redis(), &app.env.prefix));
    let shutdown = Shutdown::new();
    let running = tokio::spawn(scheduler::run(scheduler.clone(), shutdown.clone()));

    run_scenario(&app, "schedule-ledger", &[("SCHEDULE", "ledger-demo"), ("FILE_SCHEDULE", "nightly-rollup")]).await;

    shutdown.cancel();
    running.await.unwrap().unwrap();
    // What the page showed is what Redis holds: the pause was kept there and every scheduler
    // ledgered the skipped tick once; the removal dropped the ledger with the schedule.
    let store = scheduler.store();
    assert!(store.get("ledger-demo").await.unwrap().is_none(), "removed from the page");
    assert!(store.ledger("ledger-demo").await.unwrap().is_empty(), "its ledger went with it");
    assert!(!store.is_paused("ledger-demo").await.unwrap());
    std::fs::remove_file(file).ok();
    app.stop().await;
}

/// The `eventmill` binary's `schedules` commands beside the shipped scheduler.toml: a run-time
/// schedule added, listed with the file's, a file schedule paused and resumed (kept in Redis) but
/// not removable, a bad definition refused with exit code 2, the run-time one removed.
#[tokio::test]
async fn the_binary_adds_lists_pauses_and_removes_schedules_with_clear_errors() {
    let env = TestEnv::new().await;
    let run = |args: &'static [&'static str]| crate::cli::cli(&env, args);
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };

    let added =
        run(&["schedules", "add", "cli-demo", "--every", "1h", "DAILY_ROLLUP", "date=yesterday", "--priority", "2"])
            .await;
    assert!(added.status.success(), "{}", text(&added));
    assert!(
        text(&added).contains("schedule cli-demo: created") && text(&added).contains("next run in "),
        "{}",
        text(&added)
    );
    let listed = run(&["schedules", "list"]).await;
    let listed = text(&listed);
    assert!(listed.contains("cli-demo") && listed.contains("run-time") && listed.contains("every 1h"), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("daily-rollup") && l.contains(" file ")), "{listed}");

    let paused = run(&["schedules", "pause", "daily-rollup"]).await;
    assert!(paused.status.success() && text(&paused).contains("schedule daily-rollup: paused"), "{}", text(&paused));
    let shown = run(&["schedules", "show", "daily-rollup"]).await;
    assert!(
        text(&shown).contains("state:       paused") && text(&shown).contains("scheduler.toml"),
        "{}",
        text(&shown)
    );
    assert!(run(&["schedules", "resume", "daily-rollup"]).await.status.success());

    let refused = run(&["schedules", "remove", "daily-rollup"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("defined in scheduler.toml; edit the file to remove it"), "{}", text(&refused));
    let bad = run(&["schedules", "add", "bad", "--cron", "61 * * * *", "DAILY_ROLLUP", "date=today"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("cron"), "{}", text(&bad));

    assert!(run(&["schedules", "remove", "cli-demo"]).await.status.success());
    let gone = run(&["schedules", "show", "cli-demo"]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone).contains("no schedule named \"cli-demo\""), "{}", text(&gone));
}
