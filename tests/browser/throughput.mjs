// Under a stream of jobs the queue page's throughput chart gains points: it starts empty, a point
// appears once jobs complete (the chart redraws every 5 s without a reload), and the next minute
// adds another. The scenario makes the stream itself: a DAILY_ROLLUP every 250 ms via the API.
import { config, check, scenario, loggedIn, shot, until } from "./lib.mjs";

const queue = "analytics:rollup";

await scenario("throughput", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/queues/${queue}?state=completed&window=1h`);
  const dots = page.locator('#throughput-chart circle[data-series="completed"]');
  await until(async () => (await page.locator("#throughput-chart line").count()) > 0, 5000);
  check(await dots.count() === 0, "before any job the chart has no point");

  // Every answer is kept: a refused enqueue is reported, never silently lost.
  let sent = 0, accepted = 0;
  const refused = [];
  const stream = setInterval(() => {
    sent += 1;
    page.request
      .post(`${config.base}/admin/api/enqueue`, {
        headers: { authorization: `Bearer ${config.adminToken}` },
        data: { job: `job_type = "DAILY_ROLLUP"\ndate = "2026-01-0${1 + (sent % 9)}"` },
      })
      .then(async (response) => {
        if (response.ok()) accepted += 1;
        else refused.push(response.status() + " " + (await response.text()).slice(0, 200));
      })
      .catch((error) => refused.push("enqueue: " + error));
  }, 250);
  // What the queue and its history say now, for a failed check's message.
  const state = async () => {
    const get = async (path) => (await page.request.get(`${config.base}/admin/api/${path}`, {
      headers: { authorization: `Bearer ${config.adminToken}` } })).json();
    const counts = (await get("queues")).find((q) => q.name === queue);
    const history = await get(`queues/${queue}/history?window=1h`);
    return `sent ${sent}, accepted ${accepted}, refused ${refused.length} ${JSON.stringify(refused.slice(0, 3))}; ` +
      `queue ${JSON.stringify(counts)}; history completed ${history.completed} in points ` +
      JSON.stringify(history.points.filter((p) => p.completed > 0).map((p) => [p.at, p.completed]));
  };
  try {
    const first = await until(async () => (await dots.count()) >= 1, 15000, 500);
    check(first, "jobs completing put a point on the chart (no reload)");
    const total = Number(await page.locator("#history-completed").innerText());
    check(total > 0, `the page counts ${total} completed jobs`);
    await shot(page, "queue-throughput-one-minute");
    // The next minute gains a point while the stream goes on (two may already be there when the
    // first jobs straddled a minute's end), and the count grows with it.
    const before = await dots.count();
    const second = await until(async () => (await dots.count()) > before, 75000, 1000);
    check(second, `the next minute adds a point: ${await dots.count()} points; ${await state()}`);
    const grew = await until(async () => Number(await page.locator("#history-completed").innerText()) > total, 15000, 500);
    const later = Number(await page.locator("#history-completed").innerText());
    check(grew, `the completed count grew (${total} -> ${later}); ${await state()}`);
    // The latency table gained the kind's row without a reload, with its percentiles.
    const row = page.locator('#latency tr[data-kind="DAILY_ROLLUP"]');
    check((await row.count()) === 1, "the latency table has a DAILY_ROLLUP row (no reload)");
    const cells = await row.locator("td").allInnerTexts();
    check(Number(cells[1]) > 0 && cells.slice(5).every((c) => /^\S+ (ms|s|min) \/ \S+ (ms|s|min) \/ \S+ (ms|s|min)$/.test(c)),
      "its wait, run and end-to-end p50 / p95 / p99: " + cells.join(" | "));
    check(/ms$/.test(await page.locator("#latency-chart text").first().textContent()), "the latency chart's scale is in ms");
    // The counts above the chart and the state tabs are live too (they were 0 when the page opened).
    const live = await until(async () =>
      Number(await page.locator("#done-last-hour").innerText()) > 0 &&
      Number(await page.locator('.tabs .badge[data-state="completed"]').innerText()) > 0, 5000, 250);
    check(live, "the done-in-the-last-hour count and the completed tab follow without a reload");
    await shot(page, "queue-throughput-under-load");
  } finally {
    clearInterval(stream);
  }
  console.log(`SENT=${sent} ACCEPTED=${accepted} REFUSED=${refused.length}`);
});
