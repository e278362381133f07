// A dead letter is listed on the ingestion stream page with its reason and replayed from the page
// after the confirmation page.
// The Rust test (tests/it/admin_stream.rs) then checks the event was stored.
import { config, check, scenario, loggedIn, shot, clickAndWait, until } from "./lib.mjs";

await scenario("dead-letters", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(config.base + "/admin/stream");
  const row = page.locator("#dead-letters tbody tr").first();
  check(await row.count() === 1, "a dead letter is listed");
  check((await row.innerText()).includes("database was down"), "its reason is shown");
  await shot(page, "stream");

  // Replaying deletes the dead letter: the server asks first (a page, no script needed).
  await clickAndWait(page, row.locator("button.replay"));
  check((await page.locator("#confirm-question").innerText()).includes("Replay dead letter"), "the replay asks first");
  await shot(page, "stream-confirm-replay");
  await clickAndWait(page, page.locator("#confirm-yes"));
  check((await page.locator(".flash.ok").innerText()).includes("replayed"), "the page confirms the replay");
  check(await page.locator("#no-dead-letters").count() === 1, "no dead letter is left");
  // The worker's consumer joins the group when it reads the replayed entry; the live table shows it.
  const consumers = await until(async () => (await page.locator("#consumers tbody tr").count()) >= 1, 10000);
  check(consumers, "the storage group's consumer appears without a reload (live refresh)");
  await shot(page, "stream-after-replay");
});
