// A flow's parent page draws the flow tree: the parent, then each child with its state badge and
// failure policy, each a link to its job page; a child's page draws the same tree with itself
// marked. Env PARENT_ID, CHILD_IDS (comma-separated, in order), STATES (their states, same order),
// POLICY_CHILD (a child enqueued with on_failure = ignore_dependency).
import { config, check, scenario, loggedIn, shot, until } from "./lib.mjs";

const parent = process.env.PARENT_ID;
const children = process.env.CHILD_IDS.split(",");
const states = process.env.STATES.split(",");
const policyChild = process.env.POLICY_CHILD;

await scenario("flow", async (browser) => {
  const page = await loggedIn(browser, config.adminToken);
  await page.goto(`${config.base}/admin/jobs/${parent}`);
  const tree = page.locator("#flow-tree");
  const drawn = await until(async () => (await page.locator("#flow-tree .flow-node.child").count()) === children.length);
  check(drawn, `the parent's page draws its ${children.length} children`);
  check(await tree.isVisible(), "the flow section is shown");
  const root = page.locator("#flow-tree .flow-node.parent").first();
  check((await root.getAttribute("data-id")) === parent, "the tree starts at the parent");
  check(await root.evaluate((el) => el.classList.contains("current")), "the parent is marked as the page's job");
  for (const [i, id] of children.entries()) {
    const child = page.locator(`#flow-tree .flow-node.child[data-id="${id}"]`);
    check((await child.count()) === 1, `child ${id} is drawn`);
    const badge = (await child.locator(".flow-state").textContent()).trim();
    check(badge === states[i], `child ${id} shows its state ${states[i]} (shows ${badge})`);
    check((await child.locator("a.flow-link").getAttribute("href")) === `/admin/jobs/${id}`, `child ${id} links to its page`);
  }
  const policy = await page.locator(`#flow-tree .flow-node.child[data-id="${policyChild}"] .flow-policy`).textContent();
  check(policy.includes("ignore dependency"), `child ${policyChild} shows its failure policy (${policy})`);
  check((await tree.innerText()).includes(`${states.filter((s) => s === "completed").length} of ${children.length} children completed`),
    "the tree counts the completed children");
  await shot(page, "flow-parent");

  // From a child's page: the same tree, the child marked, the parent one click away.
  await page.goto(`${config.base}/admin/jobs/${children[0]}`);
  await until(async () => (await page.locator("#flow-tree .flow-node.child").count()) === children.length);
  const marked = page.locator("#flow-tree .flow-node.current");
  check((await marked.getAttribute("data-id")) === children[0], "the child's page marks the child");
  await Promise.all([page.waitForNavigation(), page.locator("#flow-tree .flow-node.parent > a.flow-link").click()]);
  check(page.url().endsWith(`/admin/jobs/${parent}`), "the parent's link leads to its page");
  await shot(page, "flow-child");
});
