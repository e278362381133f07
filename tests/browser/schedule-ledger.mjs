// A run-time schedule added from the schedules page, its times shown for people with the exact UTC
// time on hover, paused: its next tick is skipped and its ledger shows the skipped tick with the
// reason "paused"; resumed: its ticks enqueue jobs again, each linked from the ledger; removed after
// the confirmation step. The file schedule is marked read-only (no remove).
// Env SCHEDULE: the run-time schedule's name; FILE_SCHEDULE: the scheduler file's schedule.
import { config, check, scenario, loggedIn, shot, clickAndWait, until } from "./lib.mjs";

const name = process.env.SCHEDULE || "ledger-demo";
const fileSchedule = process.env.FILE_SCHEDULE || "nightly-rollup";
const UTC_TITLE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;

await scenario("schedule-ledger", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/schedules`);

  // The file schedule: read-only, no remove button.
  const fileRow = page.locator(`#schedules tr[data-schedule="${fileSchedule}"]`);
  check((await fileRow.locator("td.source").innerText()).includes("read-only"), "the file schedule is marked read-only");
  check((await fileRow.locator("button.remove").count()) === 0, "a file schedule has no remove button");

  // Add a run-time schedule from the form.
  await page.fill("#s-name", name);
  await page.fill("#s-every", "2s");
  await page.fill("#s-job", JSON.stringify({ job_type: "DAILY_ROLLUP", date: "today" }));
  await clickAndWait(page, page.locator("#add-schedule-button"));
  const added = await page.locator(".flash.ok").innerText();
  check(added.includes(`Schedule ${name} created`), "the form adds the schedule: " + added);
  const row = page.locator(`#schedules tr[data-schedule="${name}"]`);
  check((await row.locator("td.source").innerText()).includes("run-time"), "it is listed as run-time");
  const next = row.locator("td.next-run time");
  const nextText = await next.innerText();
  const nextTitle = await next.getAttribute("title");
  check(/^(in \d+ s|just now)$/.test(nextText), "the next run for people: " + nextText);
  check(UTC_TITLE.test(nextTitle), "with the exact UTC time on hover: " + nextTitle);
  await next.hover();
  await shot(page, "schedules-runtime");

  // Pause it: every scheduler skips its ticks, and its ledger says why.
  await clickAndWait(page, row.locator("button.pause"));
  check((await page.locator(".flash.ok").innerText()).includes("paused"), "pause answers with a flash");
  check((await row.getAttribute("data-state")) === "paused", "the row says paused");
  const skipped = await until(async () => {
    await page.goto(`${config.base}/admin/schedules/${name}`);
    return (await page.locator("#ledger tr.tick.skipped").count()) > 0;
  }, 15000, 500);
  check(skipped, "a tick came due while paused and was ledgered as skipped");
  const tick = page.locator("#ledger tr.tick.skipped").first();
  const reason = await tick.locator("td.reason").innerText();
  check(reason.trim() === "paused", "the skipped tick's reason is paused: " + reason);
  check((await tick.locator("td.result").innerText()).includes("skipped"), "its result says skipped");
  const due = tick.locator("td.due time");
  check(/^(\d+ s ago|just now)$/.test(await due.innerText()), "its due time for people: " + (await due.innerText()));
  check(UTC_TITLE.test(await due.getAttribute("title")), "its exact UTC due time on hover: " + (await due.getAttribute("title")));
  check((await page.locator("#schedule-state").innerText()) === "paused", "the schedule page says paused");
  await due.hover();
  await shot(page, "schedule-ledger-paused");

  // Resume: its ticks enqueue again, each job linked from the ledger.
  await clickAndWait(page, page.locator(".toolbar button.resume"));
  check((await page.locator(".flash.ok").innerText()).includes("resumed"), "resume answers with a flash");
  const enqueued = await until(async () => {
    await page.goto(`${config.base}/admin/schedules/${name}`);
    return (await page.locator("#ledger tr.tick.enqueued").count()) > 0;
  }, 15000, 500);
  check(enqueued, "after the resume a tick enqueued its job");
  const ran = page.locator("#ledger tr.tick.enqueued").first();
  const link = ran.locator("a[href*='/admin/jobs/']");
  check((await link.count()) === 1, "the tick links its job");
  check((await ran.locator("td.outcome").innerText()).trim().length > 0, "and shows its outcome");
  check(/^\d+\.\d s$/.test((await ran.locator("td.late").innerText()).trim()), "and how late it was enqueued");
  await shot(page, "schedule-ledger");
  await clickAndWait(page, link);
  check((await page.locator("main").innerText()).includes(`schedule:${name}@`), "the job says which schedule and tick made it");

  // Remove, after the confirmation step.
  await page.goto(`${config.base}/admin/schedules/${name}`);
  await clickAndWait(page, page.locator(".toolbar button.remove"));
  check((await page.locator("#confirm-question").innerText()).includes(`Remove schedule ${name}?`), "remove asks first");
  await clickAndWait(page, page.locator("#confirm-yes"));
  check((await page.locator(".flash.ok").innerText()).includes(`Schedule ${name} removed`), "then removes it");
  check((await page.locator(`#schedules tr[data-schedule="${name}"]`).count()) === 0, "it is no longer listed");
});
