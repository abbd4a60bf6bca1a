// Headless Chromium test of the page's alerts: the firing count in the
// header and the panel, against a `--demo 12` whose alerts file shortens
// `for` (scripts/test.d/48-alertmanager.sh runs it after the Alertmanager
// checks): the count shows, the panel lists sim-0005's IpvtlServerDown
// (malformed answers: error), its silence button silences it, and the
// panel speaks Chinese too.
// See browser.mjs for the environment it reads.

import { artifact, check, run, url } from "./browser.mjs";

await run("alerts page test", async context => {
  const page = await context.newPage();
  await page.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.querySelectorAll("article.server").length === 12, null, { timeout: 20000 });
  await page.waitForFunction(() => {
    const b = document.getElementById("alerts-btn");
    return b && !b.hidden && /[1-9]/.test(b.textContent);
  }, null, { timeout: 30000 });
  const label = await page.locator("#alerts-btn").textContent();
  check(/^Alerts \d+$/.test(label), "the header shows the firing count (" + label + ")");
  check(await page.locator("#alerts-btn.hot").count() === 1, "the count is marked while alerts fire");

  await page.click("#alerts-btn");
  const row = page.locator("#alerts-panel .alert.firing", { hasText: "IpvtlServerDown" }).filter({ hasText: "sim-0005" });
  await row.first().waitFor({ timeout: 10000 });
  check(true, "the panel lists IpvtlServerDown for sim-0005, firing");
  await page.screenshot({ path: artifact("alerts-panel.png") });

  await row.first().locator("button[data-silence]").click();
  await page.locator("#alerts-panel .alert.silenced", { hasText: "sim-0005" }).first().waitFor({ timeout: 15000 });
  check(true, "its silence button silences it");

  await page.click("#lang");
  await page.waitForFunction(() => document.getElementById("alerts-btn").textContent.startsWith("告警"), null, { timeout: 5000 });
  check(await page.locator("#alerts-panel", { hasText: "当前告警" }).count() === 1, "the panel speaks Chinese");
  await page.click("#lang");
});
