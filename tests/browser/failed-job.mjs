// A failed job is listed with its error, found by a word of its payload, retried from the page,
// and then listed as completed. Env JOB_WORD: the word only the target job's payload holds.
import { config, check, scenario, loggedIn, shot, clickAndWait, until } from "./lib.mjs";

const word = process.env.JOB_WORD || "zebra";
const queue = process.env.JOB_QUEUE || "analytics:rollup";

await scenario("failed-job", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin`);
  await shot(page, "overview");
  await page.goto(`${config.base}/admin/queues/${queue}?state=failed`);
  const rows = page.locator("#jobs tbody tr");
  check(await rows.count() === 3, "the three failed jobs are listed");
  check((await rows.first().innerText()).includes("unknown report type NOPE"), "each shows its error");
  await shot(page, "queue-failed");

  await page.fill("#search", word);
  await clickAndWait(page, page.locator("form.toolbar button"));
  check(await rows.count() === 1, `searching "${word}" finds one job`);
  const row = rows.first();
  check((await row.innerText()).includes(word), "the job found holds the word");
  const id = await row.getAttribute("data-id");
  await shot(page, "queue-search");

  await page.goto(`${config.base}/admin/jobs/${id}`);
  check((await page.locator("#errors").innerText()).includes("unknown report type NOPE"), "the detail lists the attempt's error");
  await shot(page, "job-failed");
  await clickAndWait(page, page.locator("button.retry"));
  check((await page.locator(".flash.ok").innerText()).includes("retried"), "the page confirms the retry");

  const completed = await until(async () => {
    await page.goto(`${config.base}/admin/queues/${queue}?state=completed`);
    return (await page.locator(`#jobs tbody tr[data-id="${id}"]`).count()) === 1;
  }, 15000, 300);
  check(completed, `job ${id} is listed as completed`);
  await shot(page, "queue-completed");
  await page.goto(`${config.base}/admin/jobs/${id}`);
  check((await page.locator("#job-state").textContent()).trim() === "completed", "its detail says completed");
  await shot(page, "job-completed");
  console.log("JOB_ID=" + id);
});
