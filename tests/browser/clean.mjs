// Bulk clean from a queue page: completed jobs older than the chosen age go after the
// confirmation page, newer completed jobs and the failed ones stay. Reads OLD_IDS and NEW_IDS
// (comma-separated completed job ids: finished hours ago, and just now) and QUEUE.
import { config, check, scenario, loggedIn, shot, clickAndWait } from "./lib.mjs";

const queue = process.env.QUEUE || "analytics:rollup";
const oldIds = (process.env.OLD_IDS || "").split(",").filter(Boolean);
const newIds = (process.env.NEW_IDS || "").split(",").filter(Boolean);

async function listed(page) {
  return page.locator("#jobs tr[data-id]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
}

await scenario("clean", async (browser) => {
  check(oldIds.length > 0 && newIds.length > 0, "the test gave old and new job ids");
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/queues/${queue}?state=completed`);
  const before = await listed(page);
  check([...oldIds, ...newIds].every((id) => before.includes(id)), "every completed job is listed before the clean");
  await shot(page, "clean-before");

  await page.selectOption("#clean-state", "completed");
  await page.fill("#clean-age", "1h");
  await clickAndWait(page, page.locator("#clean"));
  const question = await page.locator("#confirm-question").innerText();
  check(question.includes("completed jobs of queue " + queue) && question.includes("1h"), "the clean asks first: " + question);
  await shot(page, "clean-confirm");
  // Nothing is gone before the answer.
  const probe = await page.request.get(`${config.base}/admin/api/jobs/${oldIds[0]}`);
  check(probe.status() === 200, "an old job is still there while the question is open");

  await clickAndWait(page, page.locator("#confirm-yes"));
  const flash = await page.locator(".flash.ok").innerText();
  check(flash.includes(`${oldIds.length} completed job(s)`), "the page says how many were removed: " + flash);
  const after = await listed(page);
  check(oldIds.every((id) => !after.includes(id)), "the jobs older than 1 h are gone from the list");
  check(newIds.every((id) => after.includes(id)), "the jobs finished just now are still listed");
  for (const id of oldIds) {
    const response = await page.request.get(`${config.base}/admin/api/jobs/${id}`);
    check(response.status() === 404, `job ${id} (older than 1 h) is deleted`);
  }
  await shot(page, "clean-after");

  // A read-only viewer has no clean form.
  const readonly = await loggedIn(browser, config.readonlyToken);
  await readonly.goto(`${config.base}/admin/queues/${queue}?state=completed`);
  check(await readonly.locator("#clean-form").count() === 0, "a read-only viewer sees no clean form");
});
