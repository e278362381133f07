// A kind made slow turns its SLO card to breached (with "since" and the measured value over the
// target) and back to ok when it recovers. The test makes the kind (KIND) slow and keeps it slow
// until this page has shown the breach (written to BREACHED_FILE), then makes it fast again.
import { writeFileSync } from "node:fs";
import { config, check, scenario, loggedIn, shot, until } from "./lib.mjs";

const kind = process.env.KIND || "DAILY_ROLLUP";
const breachedFile = process.env.BREACHED_FILE;

async function state(page) {
  await page.goto(`${config.base}/admin/slos`);
  const card = page.locator(`.slo-card[data-kind="${kind}"]`);
  if ((await card.count()) === 0) return "missing";
  return await card.getAttribute("data-state");
}

await scenario("slos", async (browser) => {
  const page = await loggedIn(browser, config.readonlyToken);
  check(await until(async () => (await state(page)) === "breached", 30000, 1000), `${kind}'s card turns breached`);
  const row = page.locator(`.slo-card[data-kind="${kind}"] tr[data-slo="run_p95"]`);
  check((await row.getAttribute("data-state")) === "breached", "its run p95 row is breached");
  const text = await row.innerText();
  check(/since/.test(text) && /ago/.test(text), "it says since when: " + text);
  check(/ms|s/.test(await row.locator(".measured").innerText()), "it shows the measured value");
  check((await page.locator(`.slo-card[data-kind="HOURLY_ROLLUP"]`).getAttribute("data-state")) === "ok", "another kind stays ok");
  await shot(page, "slo-breached");
  // The test keeps the kind slow until now: it may recover from here on.
  if (breachedFile) writeFileSync(breachedFile, new Date().toISOString());

  check(await until(async () => (await state(page)) === "ok", 60000, 1000), `${kind}'s card returns to ok when it recovers`);
  check((await row.getAttribute("data-state")) === "ok", "its run p95 row is ok");
  await shot(page, "slo-recovered");
});
