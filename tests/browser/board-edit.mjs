// The job page's "Edit data" and the queue page's limits form, clicked through in Chromium: bad
// JSON is refused with its reason and changes nothing; good data is saved, shown and logged with
// who edited it; the queue's global concurrency and rate limit are set from the form and shown.
// Reads JOB_ID (a failed job of QUEUE) and QUEUE.
import { config, check, scenario, loggedIn, shot, clickAndWait } from "./lib.mjs";

const id = process.env.JOB_ID;
const queue = process.env.QUEUE || "analytics:rollup";

await scenario("board-edit", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/jobs/${id}`);
  check(await page.locator("#timeline li.added").count() === 1, "the job page shows the job's timeline");
  check((await page.locator("#timeline").innerText()).includes("ran"), "the timeline says how long the job ran");
  await page.locator("#edit-data summary").click();
  await page.fill("#edit-data-text", '{"job_type": "DAILY_ROLLUP", "date": ');
  await clickAndWait(page, page.locator("#edit-data-save"));
  check((await page.locator(".flash.error").innerText()).includes("not valid JSON"), "bad JSON is refused, saying why");
  check((await page.locator("#payload").innerText()).includes("2026-01-01"), "the data is unchanged");

  await page.locator("#edit-data summary").click();
  await page.fill("#edit-data-text", '{"job_type": "DAILY_ROLLUP", "date": "2026-02-03"}');
  await clickAndWait(page, page.locator("#edit-data-save"));
  const flash = await page.locator(".flash.ok").innerText();
  check(flash.includes(`Data of job ${id} edited`) && flash.includes("Retry it"), "the edit is saved: " + flash);
  check((await page.locator("#payload").innerText()).includes("2026-02-03"), "the page shows the new data");
  const log = await page.locator("#log").innerText();
  check(log.includes("data edited by") && log.includes("2026-01-01"), "the job's log records the edit and the old data");
  await shot(page, "job-data-edited");

  await page.goto(`${config.base}/admin/queues/${queue}`);
  await page.fill("#limit-concurrency", "3");
  await page.fill("#limit-rate", "20/1m");
  await clickAndWait(page, page.locator("#limits-save"));
  check((await page.locator(".flash.ok").innerText()).includes("global concurrency 3, rate limit 20/1m"), "the limits are set");
  check((await page.locator("#rate-limit").innerText()).includes("rate limit 20/1m"), "the page shows the rate limit in force");
  check((await page.locator("#global-concurrency").innerText()).includes("at most 3 running at once"), "and the global concurrency");
  await page.fill("#limit-rate", "lots");
  await clickAndWait(page, page.locator("#limits-save"));
  check((await page.locator(".flash.error").innerText()).includes("jobs/duration"), "a bad rate limit is refused, saying why");
  await shot(page, "queue-limits");
  await page.goto(`${config.base}/admin/queues`);
  const row = page.locator(`#queues tr[data-queue="${queue}"] td.limits`);
  check((await row.innerText()).includes("3 at once · 20/1m"), "the queue list shows the limits");

  const readonly = await loggedIn(browser, config.readonlyToken);
  await readonly.goto(`${config.base}/admin/jobs/${id}`);
  check(await readonly.locator("#edit-data-form").count() === 0, "a read-only viewer has no edit form");
  await readonly.goto(`${config.base}/admin/queues/${queue}`);
  check(await readonly.locator("#limits-form").count() === 0, "nor a limits form");
});
