// Headless Chromium test of the dashboard page at fleet scale, run by
// scripts/test.d/40-dashboard-browser.sh against `ipvtl-dashboard --demo 2000`.
// Asserts behaviour (every card renders, live updates arrive, search narrows,
// a batch restart chosen in the page runs to its report); prints the time
// each step took as figures, without judging them (the machine is shared).
// Env: SERVERS (fleet size), and those of browser.mjs.

import { artifact, check, run, url } from "./browser.mjs";

const servers = Number(process.env.SERVERS || 2000);
const since = t0 => ((Date.now() - t0) / 1000).toFixed(2) + " s";

await run("large-fleet browser test", async context => {
  const page = await context.newPage();

  let t0 = Date.now();
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(n => document.querySelectorAll("article.server").length === n, servers, { timeout: 60000 });
  check(true, `${servers} server cards rendered (${since(t0)} after navigation)`);
  await page.waitForSelector("#live.on", { timeout: 20000 });
  await page.waitForFunction(n => Number(document.getElementById("t-online").textContent) >= n - 10, servers,
    { timeout: 60000 });
  check(true, `fleet totals count the online servers (${await page.textContent("#t-online")} of ${servers}, ${since(t0)})`);

  // How long the page's main thread went without running a 10 ms timer
  // while live updates arrived for 5 s: a figure, not a limit.
  const stall = await page.evaluate(async () => {
    let worst = 0, last = performance.now();
    const end = last + 5000;
    while (performance.now() < end) {
      await new Promise(r => setTimeout(r, 10));
      const now = performance.now();
      worst = Math.max(worst, now - last - 10);
      last = now;
    }
    return Math.round(worst);
  });
  console.log(`figure: longest main-thread stall over 5 s of live updates: ${stall} ms`);

  // Search narrows 2 000 cards to one.
  const target = await page.evaluate(() => {
    const cards = [...document.querySelectorAll("article.server.st-online:not(.maint)")];
    const card = cards.reverse().find(c => c.querySelectorAll('.channel[data-state="running"]').length >= 2);
    return card ? card.dataset.server : null;
  });
  check(target !== null, "found an online server with running channels: " + target);
  t0 = Date.now();
  await page.fill("#search", target);
  await page.waitForFunction(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden).length === 1,
    null, { timeout: 10000 });
  check(true, `search leaves one card of ${servers} (${since(t0)})`);

  // Batch: select the running channels of the visible card, restart them
  // through the batch bar, follow the progress to the report.
  const card = page.locator(`article.server[data-server="${target}"]`);
  const running = await card.locator('.channel[data-state="running"]').count();
  await page.click("#sel-running");
  await page.waitForSelector("#batchbar.show", { timeout: 5000 });
  const selectedText = await page.textContent("#sel-count");
  check(selectedText.includes(String(running)), `"${selectedText}" after selecting ${running} running channels`);
  t0 = Date.now();
  await page.click("#batch-restart");
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  check((await page.textContent("#confirm-text")).includes(String(running)), "the confirmation counts the channels");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => !document.getElementById("batch-progress").hidden, null, { timeout: 10000 });
  check(true, "the batch progress bar shows");
  await page.waitForFunction(n => {
    const s = document.getElementById("batch-status").textContent;
    return new RegExp("^Batch \\d+: " + n + " ok, 0 failed$").test(s);
  }, running, { timeout: 90000, polling: 200 });
  check(true, `batch report: ${await page.textContent("#batch-status")} (${since(t0)})`);
  await page.waitForFunction(n =>
    document.querySelectorAll(`article.server:not([hidden]) .channel[data-state="running"]`).length === n, running,
    { timeout: 20000 });
  check(true, `the ${running} channels are running again`);
  await page.screenshot({ path: artifact("dashboard-2000.png"), fullPage: false });
});
