// The live dashboard: login leads to it, KPI cards count the events just sent, the live chart gains
// a point every second, an error burst turns the error-rate card and chart to alert within 2 s, the
// range picker shows rolled-up hours, no token redirects to login (API 401), read-only sees it.
// Env: HISTORY_EVENTS (events the test stored 30 hours ago and rolled up).
import { config, check, scenario, loggedIn, shot, until } from "./lib.mjs";

const history = Number(process.env.HISTORY_EVENTS || "0");

function events(type, n, extra = "") {
  const ts = new Date().toISOString();
  const list = Array.from({ length: n }, (_, i) =>
    `{"event_type":"${type}","timestamp":"${ts}","user_id":"u${i}","source":"web"${extra}}`);
  return `{"events":[${list.join(",")}]}`;
}

async function send(page, body) {
  const response = await page.request.post(config.base + "/v1/events/bulk", { headers: { "content-type": "application/json" }, data: body });
  check(response.status() === 202, "events accepted");
}

await scenario("dashboard", async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const anonymous = await context.newPage();
  await anonymous.goto(config.base + "/dashboard");
  check(new URL(anonymous.url()).pathname === "/admin/login", "no token: /dashboard leads to the login page");
  const api = await anonymous.request.get(config.base + "/v1/analytics/summary");
  check(api.status() === 401, "no token: the query API answers 401");

  const page = await loggedIn(browser, config.adminToken);
  check(new URL(page.url()).pathname === "/dashboard", "the dashboard is the first page after login");
  await send(page, events("page_view", 37));
  await send(page, events("purchase", 4, ',"properties":{"amount":25.5}'));
  const kpis = await until(async () => {
    const views = await page.locator('[data-kpi="page_views"]').innerText();
    const purchases = await page.locator('[data-kpi="purchases"]').innerText();
    const revenue = await page.locator('[data-kpi="revenue"]').innerText();
    return views === "37" && purchases === "4" && revenue === "102.00" && [views, purchases, revenue];
  }, 10000);
  check(kpis, `the KPI cards count the events just sent (${kpis})`);

  const points = async () => Number(await page.locator("#chart-events").getAttribute("data-points"));
  const before = await points();
  await send(page, events("page_view", 5));
  await page.waitForTimeout(2600);
  const after = await points();
  check(after >= before + 2, `the live chart gains a point every second (${before} -> ${after})`);
  check(await page.locator('#chart-events path[data-series="page_view"]').count() === 1, "a line per event type");
  check(!(await page.locator("#kpi-error-rate").getAttribute("class")).includes("alert"), "no alert before the burst");

  const burst = Date.now();
  await send(page, events("error", 60));
  const alerted = await until(async () =>
    (await page.locator("#kpi-error-rate").getAttribute("class")).includes("alert") &&
    (await page.locator("#error-chart").getAttribute("class")).includes("alert"), 2500, 50);
  const took = Date.now() - burst;
  check(alerted && took <= 2000, `an error burst turns the card and chart to alert within 2 s (${took} ms)`);
  check(await page.locator("#chart-errors line.threshold").count() === 1, "the error chart draws the threshold line");
  await shot(page, "dashboard-alert");

  await page.selectOption("#range", "hour:7d");
  const hourly = await until(async () => {
    const svg = page.locator("#chart-history");
    return (await svg.getAttribute("data-interval")) === "hour" && Number(await svg.getAttribute("data-points")) >= 168 &&
      (await page.locator("#history-note").innerText());
  }, 10000);
  const total = 37 + 4 + 5 + 60 + history;
  check(hourly && hourly.startsWith(total.toLocaleString("en-US") + " events"), `hourly history shows the rolled-up hours (${hourly})`);
  check(await page.locator("#chart-history rect.bar").count() >= 2, "the history has bars for the old and the current hour");
  await shot(page, "dashboard-hourly");

  const readonly = await loggedIn(browser, config.readonlyToken);
  const response = await readonly.goto(config.base + "/dashboard");
  check(response.status() === 200, "the read-only token sees the dashboard");
  check((await readonly.locator("#role").textContent()).trim() === "readonly", "as read-only");
  const seen = await until(async () => (await readonly.locator('[data-kpi="page_views"]').innerText()) === "42", 10000);
  check(seen, "read-only gets the figures too");
});
