//! The schedules board in real Chromium (issue 21's "done when"): a run-time schedule added from
//! the page, paused: a scheduler running beside the app skips its tick and the ledger shows the
//! skipped tick with its reason "paused"; times for people with the exact UTC time in the title;
//! resumed, its ticks enqueue again; removed after confirmation. `tests/browser/schedule-ledger.mjs`.

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
