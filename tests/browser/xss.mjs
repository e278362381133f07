// A job payload holding markup is shown as text on the list and detail pages, never run.
// The payload's script sets window.__pwned; it must stay undefined.
import { config, check, scenario, loggedIn, shot } from "./lib.mjs";

const id = process.env.JOB_ID;

await scenario("xss", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  for (const path of [`/admin/queues/analytics:reports?state=waiting`, `/admin/jobs/${id}`]) {
    await page.goto(config.base + path);
    check(await page.evaluate(() => window.__pwned) === undefined, `${path}: the payload's script did not run`);
    check((await page.locator("main").innerText()).includes("<script>window.__pwned=1</script>"), `${path}: the markup is visible as text`);
    check(await page.locator("main script, main img").count() === 0, `${path}: no element was made from the payload`);
  }
  await shot(page, "job-xss");
});
