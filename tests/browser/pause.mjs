// Pausing a queue from the overview stops it taking jobs (a job enqueued from the form stays
// waiting); resuming starts it again and the job completes. A bad job file is refused with a reason.
import { config, check, scenario, loggedIn, shot, clickAndWait, until } from "./lib.mjs";

const queue = "analytics:rollup";

async function enqueue(page, text) {
  await page.goto(`${config.base}/admin/enqueue`);
  await page.fill("#job", text);
  await clickAndWait(page, page.locator("#enqueue"));
}

await scenario("pause", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin`);
  const row = page.locator(`#queues tr[data-queue="${queue}"]`);
  await clickAndWait(page, row.locator("button.pause"));
  check((await row.innerText()).includes("paused"), "the overview shows the queue paused");
  await shot(page, "overview-paused");

  await enqueue(page, 'job_type = "DAILY_ROLLUP"\ndate = "2026-01-01"\nbogus = 1');
  check((await page.locator(".flash.error").innerText()).includes("bogus"), "a job file with an unknown field is refused, naming it");
  await enqueue(page, 'job_type = "DAILY_ROLLUP"\ndate = "2026-01-02"');
  const flash = await page.locator(".flash.ok").innerText();
  const id = flash.match(/Job (\d+) enqueued/)?.[1];
  check(id, "the form enqueues the job: " + flash);
  await shot(page, "enqueue");

  await new Promise((r) => setTimeout(r, 1500));
  await page.goto(`${config.base}/admin/queues/${queue}?state=waiting`);
  check(await page.locator(`#jobs tr[data-id="${id}"]`).count() === 1, "1.5 s later the job still waits: the paused queue took nothing");
  await shot(page, "queue-waiting-paused");

  await clickAndWait(page, page.locator("button.resume"));
  check(await page.locator("#running").count() === 1, "the queue runs again");
  const done = await until(async () => {
    const response = await page.request.get(`${config.base}/admin/api/jobs/${id}`);
    return (await response.json()).state === "completed";
  }, 10000, 200);
  check(done, "after resume the job completes");
  // The overview's counts follow without a reload (live refresh).
  await page.goto(`${config.base}/admin`);
  const completedCell = page.locator(`#queues tr[data-queue="${queue}"] [data-live$=".completed"]`);
  check(await until(async () => (await completedCell.textContent()).trim() !== "", 3000), "the overview shows the completed count");
  console.log("JOB_ID=" + id);
});
