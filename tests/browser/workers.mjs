// The workers page lists every worker process (host, pid, version, queues, running jobs linked to
// their pages); a process SIGKILLed (here, by the scenario) stays listed until its lease runs out,
// then leaves; the other stays. The test keeps one job (RUNNING_JOB) running meanwhile.
import { config, check, scenario, loggedIn, shot, until } from "./lib.mjs";

const victim = process.env.KILL_PID;
const survivor = process.env.KEEP_PID;
const running = process.env.RUNNING_JOB;

async function listed(page, pid) {
  return (await page.locator(`#workers tr[data-pid="${pid}"]`).count()) === 1;
}

await scenario("workers", async (browser) => {
  const page = await loggedIn(browser, config.readonlyToken);
  const both = await until(async () => {
    await page.goto(`${config.base}/admin/workers`);
    return (await listed(page, victim)) && (await listed(page, survivor));
  }, 20000, 500);
  check(both, "both worker processes are listed");
  const row = await page.locator(`#workers tr[data-pid="${victim}"]`).innerText();
  check(row.includes("analytics:rollup") && row.includes("analytics:reports") && row.includes("eventmill "), "a row names its queues and version: " + row);
  const note = await page.locator("#lease-note").innerText();
  check(note.includes("leaves this list 3.0 s after its last beat"), "the page says when a silent process leaves: " + note);
  if (running) {
    const link = page.locator(`#workers td.running a[href$="/jobs/${running}"]`);
    const shown = await until(async () => {
      await page.goto(`${config.base}/admin/workers`);
      return (await link.count()) === 1;
    }, 15000, 500);
    check(shown, `the running job #${running} is listed under its process, linked to its page`);
    check((await link.innerText()).includes("DAILY_ROLLUP"), "with its kind: " + (await link.innerText()));
  }
  await shot(page, "workers");

  process.kill(Number(victim), "SIGKILL");
  const killedAt = Date.now();
  await page.goto(`${config.base}/admin/workers`);
  check(await listed(page, victim), "right after SIGKILL it is still listed (its lease runs)");
  const gone = await until(async () => {
    await page.goto(`${config.base}/admin/workers`);
    return !(await listed(page, victim));
  }, 10000, 250);
  check(gone, `the killed process left the page ${((Date.now() - killedAt) / 1000).toFixed(1)} s after SIGKILL`);
  check(await listed(page, survivor), "the other process is still listed");
  await shot(page, "workers-after-kill");
});
