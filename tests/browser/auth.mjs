// Access control: no token gets the login page (and 401 from the API), a wrong token is refused,
// the read-only token sees every page but every action answers 403, even with a valid CSRF token.
import { config, check, scenario, loggedIn, shot } from "./lib.mjs";

const pages = (process.env.ADMIN_PAGES || "/admin,/admin/stream").split(",");
const actions = (process.env.ADMIN_ACTIONS || "/admin/api/dead-letters/replay-all").split(",");

await scenario("auth", async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const anonymous = await context.newPage();
  for (const path of pages) {
    await anonymous.goto(config.base + path);
    check(new URL(anonymous.url()).pathname === "/admin/login", `no token: ${path} leads to the login page`);
    check(await anonymous.locator("#token").count() === 1, "the login page asks for a token");
  }
  await shot(anonymous, "login");
  const api = await anonymous.request.get(config.base + "/admin/api/overview");
  check(api.status() === 401, "no token: the API answers 401");

  await anonymous.fill("#token", "not-the-token");
  await anonymous.click("button[type=submit]");
  check((await anonymous.locator(".flash.error").innerText()).includes("not valid"), "a wrong token is refused");

  const readonly = await loggedIn(browser, config.readonlyToken);
  for (const path of pages) {
    const response = await readonly.goto(config.base + path);
    check(response.status() === 200, `read-only sees ${path}`);
    check((await readonly.locator("#role").textContent()).trim() === "readonly", "the page shows the read-only role");
    check(await readonly.locator("main form[method=post]").count() === 0, `no action form on ${path} for read-only`);
  }
  await shot(readonly, "readonly");
  const csrf = await readonly.locator("meta[name=csrf-token]").getAttribute("content");
  check(csrf && csrf.length > 0, "the read-only session has a CSRF token");
  for (const path of actions) {
    const status = await readonly.evaluate(async ([url, token]) => {
      const response = await fetch(url, { method: "POST", headers: { "x-csrf-token": token, "content-type": "application/json" }, body: "{}" });
      return response.status;
    }, [config.base + path, csrf]);
    check(status === 403, `read-only session: POST ${path} is refused with 403`);
    const bearer = await readonly.request.post(config.base + path, {
      headers: { authorization: "Bearer " + config.readonlyToken, "content-type": "application/json" }, data: "{}",
    });
    check(bearer.status() === 403, `read-only bearer: POST ${path} is refused with 403`);
  }
});
