// Headless Chromium test of the dashboard page, run by
// scripts/test.d/40-dashboard-browser.sh against `ipvtl-dashboard --demo 12`.
// Uses Debian's chromium through playwright-core (no browser download); see
// browser.mjs for the environment it reads.

import { artifact, check, run, url } from "./browser.mjs";

await run("browser test", async context => {
  // Records every page's Content-Security-Policy violations from its first
  // script on (checked at the end: the strict policy must never bite).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", e =>
      window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
  });
  const page = await context.newPage();

  const resp = await page.goto(url, { waitUntil: "domcontentloaded" });
  const csp = (await resp.allHeaders())["content-security-policy"] || "";
  check(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"),
    "the page's policy allows no inline script or style (" + csp + ")");
  await page.waitForFunction(() => document.querySelectorAll("article.server").length === 12, null, { timeout: 20000 });
  check(true, "12 server cards rendered");

  // Live data: online servers with per-core CPU bars, and the event stream up.
  await page.waitForSelector("article.server.st-online .cpu i b", { timeout: 20000 });
  const cores = await page.locator("article.server.st-online").first().locator(".cpu i").count();
  check(cores === 8, "an online card shows 8 CPU cores (got " + cores + ")");
  const bars = await page.locator("article.server.st-online").first().locator(".cpu i b")
    .evaluateAll(bs => bs.map(b => [b.style.height, b.parentElement.title]));
  check(bars.every(([h, title]) => h !== "" && h === Math.max(0, Math.min(100, parseFloat(title))) + "%"),
    "each CPU bar is as high as its core's load (" + bars.map(b => b[0]).join(" ") + ")");
  await page.waitForSelector("#live.on", { timeout: 10000 });
  check(true, "live event stream connected");
  const online = Number(await page.textContent("#t-online"));
  check(online >= 1, "fleet totals count online servers (" + online + ")");
  // The demo's faulty servers are marked where they are.
  await page.waitForSelector("article.server.st-offline, article.server.st-error", { timeout: 30000 });
  const errText = await page.locator("article.server .err").first().textContent();
  check(errText && errText.length > 0, "a failing server shows its error: " + errText);

  // The demo's stalled server (running channels at 0 fps) is marked on
  // each such channel.
  const stalledCh = page.locator("article.server.st-online .channel.stalled").first();
  await stalledCh.waitFor({ timeout: 20000 });
  const stalledText = (await stalledCh.locator(".status").textContent()) || "";
  check(stalledText.includes(" 0fps@"), "a stalled channel is marked (" + stalledText + ")");
  check((await stalledCh.locator(".badge.stalled").textContent()) === "stalled", "with a 'stalled' badge");
  const healthyStalled = await page.locator('article.server[data-server="sim-0001"] .channel.stalled').count();
  check(healthyStalled === 0, "and healthy channels are not");

  // Pick a running channel on an online server and record every state its
  // card shows from now on.
  const target = await page.evaluate(() => {
    for (const card of document.querySelectorAll("article.server.st-online:not(.maint)")) {
      const ch = card.querySelector('.channel[data-state="running"]');
      if (ch) return { server: card.dataset.server, channel: ch.dataset.channel };
    }
    return null;
  });
  check(target !== null, "found a running channel");
  await page.evaluate(({ server, channel }) => {
    const read = () => {
      const card = [...document.querySelectorAll("article.server")].find(c => c.dataset.server === server);
      const ch = card && card.querySelector('.channel[data-channel="' + channel + '"]');
      return ch ? ch.dataset.state : null;
    };
    window.__states = [read()];
    new MutationObserver(() => {
      const s = read();
      if (s && s !== window.__states[window.__states.length - 1]) window.__states.push(s);
    }).observe(document.getElementById("grid"), { subtree: true, childList: true, attributes: true });
  }, target);

  const card = page.locator(`article.server[data-server="${target.server}"]`);
  await card.locator(`.channel[data-channel="${target.channel}"] button[data-act="restart"]`).click();
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  check((await page.textContent("#confirm-text")).includes(target.server), "the confirmation names the server");
  await page.click("#confirm-ok");

  await page.waitForFunction(() => {
    const s = window.__states, i = s.indexOf("stopping"), j = s.indexOf("idle", i + 1), k = s.indexOf("running", j + 1);
    return i >= 0 && j > i && k > j;
  }, null, { timeout: 30000, polling: 100 }).catch(() => {});
  const states = await page.evaluate(() => window.__states);
  console.log("channel states seen: " + states.join(" -> "));
  const i = states.indexOf("stopping"), j = states.indexOf("idle", i + 1), k = states.indexOf("running", j + 1);
  check(states[0] === "running" && i > 0 && j > i && k > j, "the channel went running -> stopping -> idle -> running");
  await card.locator(`.channel[data-channel="${target.channel}"] .busy`).filter({ hasText: "ms" }).waitFor({ timeout: 10000 });
  check(true, "the card reports the restart's outcome");

  await page.screenshot({ path: artifact("dashboard.png"), fullPage: false });
  check(true, "screenshot saved to " + artifact("dashboard.png"));

  // Search narrows the cards; the language switch translates the page.
  await page.fill("#search", target.server);
  await page.waitForFunction(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden).length === 1, null, { timeout: 5000 });
  check(true, "search leaves one card");
  await page.fill("#search", "");
  await page.click("#lang");
  await page.waitForFunction(() => document.querySelector("h1").textContent === "IPVTL 监控面板", null, { timeout: 5000 });
  check(true, "zh translation applies to the page");
  await page.waitForFunction(() => {
    const card = [...document.querySelectorAll("article.server")].find(c => !c.hidden);
    const restart = card && card.querySelector('button[data-act="restart"]');
    const badge = card && card.querySelector(".shead .badge");
    return restart && restart.textContent === "重启" && badge && badge.textContent === "在线";
  }, null, { timeout: 5000 });
  check(true, "and to the server cards (buttons, badges)");
  const note = card.locator(`.channel[data-channel="${target.channel}"] .busy`);
  await note.filter({ hasText: "重启完成" }).waitFor({ timeout: 5000 });
  check(true, "and to the restart's outcome: " + await note.textContent());
  await page.screenshot({ path: artifact("dashboard-zh.png"), fullPage: false });
  await page.click("#lang");

  // A phone-width page renders without horizontal overflow.
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url, { waitUntil: "domcontentloaded" });
  await phone.waitForSelector("article.server.st-online .cpu i b", { timeout: 20000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "no horizontal overflow at 390 px (overflow " + overflow + " px)");
  await phone.screenshot({ path: artifact("dashboard-phone.png") });

  for (const [p, name] of [[page, "desktop"], [phone, "phone"]]) {
    const violations = await p.evaluate(() => window.__cspViolations);
    check(violations.length === 0, "no Content-Security-Policy violation on the " + name + " page" +
      (violations.length ? ": " + violations.join("; ") : ""));
  }
});
