// The schedules page lists each schedule with cron, timezone, misfire policy, last and next run;
// "Run now" enqueues its job. Env SCHEDULE: the schedule to run.
import { config, check, scenario, loggedIn, shot, clickAndWait } from "./lib.mjs";

const name = process.env.SCHEDULE || "nightly-rollup";

await scenario("schedules", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/schedules`);
  const row = page.locator(`#schedules tr[data-schedule="${name}"]`);
  const text = await row.innerText();
  check(text.includes("Europe/Berlin") && text.includes("0 2 * * *") && text.includes("run_once"), "cron, timezone and misfire are shown");
  await shot(page, "schedules");
  await clickAndWait(page, row.locator("button.run-now"));
  const flash = await page.locator(".flash.ok").innerText();
  const id = flash.match(/job (\d+) enqueued/)?.[1];
  check(id, "run now enqueues a job: " + flash);
  await page.goto(`${config.base}/admin/jobs/${id}`);
  check((await page.locator("main").innerText()).includes(`schedule:${name}@manual`), "the job says which schedule made it");
  await page.goto(`${config.base}/admin/schedules`);
  const outcome = await page.locator(`#schedules tr[data-schedule="${name}"] td.outcome`).innerText();
  check(outcome.includes(`#${id}`) && outcome.includes("waiting"), "the last outcome names the job and its state: " + outcome);
  await shot(page, "schedules-after-run");
  console.log("JOB_ID=" + id);
});
