// Shared helpers of the admin browser scenarios: launch Debian's Chromium headless through
// playwright-core, log in, take screenshots, fail loudly. Each scenario reads
//   EVENTMILL_BASE_URL, EVENTMILL_ADMIN_TOKEN, EVENTMILL_READONLY_TOKEN, SCREENSHOT_DIR
// (or argv: base-url admin-token readonly-token) and exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export const config = {
  base: (process.argv[2] || process.env.EVENTMILL_BASE_URL || "http://127.0.0.1:8080").replace(/\/$/, ""),
  adminToken: process.argv[3] || process.env.EVENTMILL_ADMIN_TOKEN || "",
  readonlyToken: process.argv[4] || process.env.EVENTMILL_READONLY_TOKEN || "",
  screenshots: process.env.SCREENSHOT_DIR || join(here, "screenshots"),
};

export function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
  console.log("ok - " + message);
}

/// Launches Chromium with a fresh profile; `run(browser)` does the scenario.
export async function scenario(name, run) {
  mkdirSync(config.screenshots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    // playwright gives every launch a fresh temporary profile (its own --user-data-dir).
  });
  try {
    await run(browser);
    console.log(`scenario ${name}: passed`);
  } catch (error) {
    console.error(`scenario ${name}: FAILED: ${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/// A new page logged in with `token` through the login form.
export async function loggedIn(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error("page error: " + error));
  await page.goto(config.base + "/admin/login");
  await page.fill("#token", token);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/admin/login")), page.click("button[type=submit]")]);
  return page;
}

export async function shot(page, name) {
  const path = join(config.screenshots, name + ".png");
  await page.screenshot({ path, fullPage: true });
  console.log("screenshot " + path);
}

/// Submits the form holding `button` and waits for the page it leads to.
export async function clickAndWait(page, locator) {
  await Promise.all([page.waitForNavigation(), locator.click()]);
}

/// Polls `probe` (async, returns truthy when done) for up to `ms`.
export async function until(probe, ms = 10000, every = 200) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, every));
  }
}
