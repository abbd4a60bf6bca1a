// Headless Chromium tests of the dashboard page, run by
// scripts/test.d/40-dashboard-browser.sh against `ipvtl-dashboard --demo 12`:
// the page and its live updates; desired state, drift and the healing
// switch; a degraded channel and its retry.
// Uses Debian's chromium through playwright-core (no browser download); see
// browser.mjs for the environment it reads.

import { artifact, check, run, url } from "./browser.mjs";

await run("browser test", async context => {
  const page = await context.newPage();

  const resp = await page.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
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
  // The totals are the whole fleet's (the overview's model), live by events.
  await page.waitForFunction(() => Number(document.getElementById("t-online").textContent) >= 1, null, { timeout: 10000 })
    .catch(() => {});
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
    // Not sim-0007: the demo's server that rejects every command.
    for (const card of document.querySelectorAll('article.server.st-online:not(.maint):not([data-server="sim-0007"])')) {
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
  await phone.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
  await phone.waitForSelector("article.server.st-online .cpu i b", { timeout: 20000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "no horizontal overflow at 390 px (overflow " + overflow + " px)");
  await phone.screenshot({ path: artifact("dashboard-phone.png") });

});

// Desired state, drift and the healing switch. The demo reports drift but
// heals nothing (no healing policy), so a channel that wants to run and is
// stopped stays drifting: the page must say so and keep saying so.
await run("desired state and healing browser test", async context => {
  const page = await context.newPage();
  await page.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.querySelectorAll("article.server").length === 12, null, { timeout: 20000 });
  await page.waitForSelector("#live.on", { timeout: 10000 });

  // The header's healing switch, from GET /api/reconciler.
  await page.waitForSelector("#healing:not([hidden])", { timeout: 10000 });
  const healingAtStart = await page.textContent("#heal-state");
  check(healingAtStart === "healing: on", "the header shows '" + healingAtStart + "'");
  check(/^\d+\/\d+ troubled$/.test(await page.textContent("#heal-count")),
    "and the troubled/managed count: " + await page.textContent("#heal-count"));

  // Channel 1 of the first server (the demo's always-working one), running.
  const server = await page.evaluate(() => document.querySelector("article.server").dataset.server);
  const ch = page.locator(`article.server[data-server="${server}"] .channel[data-channel="1"]`);
  await page.waitForSelector(`article.server[data-server="${server}"].st-online`, { timeout: 20000 });
  if ((await ch.getAttribute("data-state")) !== "running") {
    await ch.locator('button[data-act="start"]').click();
    await page.click("#confirm-ok");
    await page.waitForSelector(`article.server[data-server="${server}"] .channel[data-channel="1"][data-state="running"]`,
      { timeout: 20000 });
  }
  check(true, `channel 1 on ${server} is running`);
  check(await ch.locator(".badge.want").count() === 0, "an unmanaged channel shows no desired state");

  // Desired: running, through the channel's menu.
  await ch.locator('button[data-menu="desired"]').click();
  await page.waitForSelector("#desired-menu:not([hidden])", { timeout: 5000 });
  check((await page.textContent("#desired-title")).includes(server), "the desired-state menu names the server");
  await page.click('#desired-menu button[data-desired="running"]');
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  await page.click("#confirm-ok");
  await ch.locator(".badge.want", { hasText: "wants running" }).waitFor({ timeout: 10000 });
  check(true, "the channel shows 'wants running' next to its observed state ("
    + await ch.locator(".top .badge").textContent() + ")");
  check(await page.locator("#desired-menu").isHidden(), "the menu closed");
  check(await ch.locator(".badge.drift").count() === 0, "running as desired: no drift");

  // Stopped through the page's stop button: desired running, observed idle.
  await ch.locator('button[data-act="stop"]').click();
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  await page.click("#confirm-ok");
  await page.waitForSelector(`article.server[data-server="${server}"] .channel[data-channel="1"][data-state="idle"]`,
    { timeout: 20000 });
  const drift = ch.locator(".badge.drift");
  await drift.waitFor({ timeout: 20000 });
  const driftText = await drift.textContent();
  check(/^drift \d+[smh]/.test(driftText), "the stopped channel shows a drift badge: " + driftText);
  // The drift may have started while the channel was still stopping: its
  // tip follows the list, fetched again after the channel went idle.
  await page.waitForFunction(s => {
    const b = document.querySelector(`article.server[data-server="${s}"] .channel[data-channel="1"] .badge.drift`);
    return b && b.title.startsWith("wants running but is idle");
  }, server, { timeout: 10000 }).catch(() => {});
  const driftTip = await drift.getAttribute("title");
  check(driftTip.startsWith("wants running but is idle"), "which says why: " + driftTip);
  check(await ch.locator(".badge.want", { hasText: "wants running" }).count() === 1, "the desired state stays shown");
  await page.waitForFunction(() => /^[1-9]\d*\//.test(document.getElementById("heal-count").textContent), null,
    { timeout: 10000 }).catch(() => {});
  check(/^[1-9]\d*\/\d+ troubled$/.test(await page.textContent("#heal-count")),
    "the header counts it as troubled: " + await page.textContent("#heal-count"));
  // Healing is off in the demo: the drift stays and nothing starts the channel.
  await page.waitForTimeout(4000);
  check(await ch.getAttribute("data-state") === "idle" && await drift.isVisible(),
    "4 s later the channel is still idle and drifting (" + await drift.textContent() + ")");
  await page.selectOption("#f-channel", "drifting");
  await page.waitForFunction(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden).length >= 1, null,
    { timeout: 5000 });
  const shown = await page.evaluate(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden)
    .map(c => c.dataset.server));
  check(shown.includes(server), "the 'drifting' filter shows the server (" + shown.join(", ") + ")");
  await page.screenshot({ path: artifact("dashboard-drift.png"), fullPage: false });
  check(true, "screenshot saved to " + artifact("dashboard-drift.png"));
  await page.selectOption("#f-channel", "");
  await page.waitForFunction(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden).length === 12, null,
    { timeout: 5000 });

  // The healing switch: paused, and back.
  await page.click("#heal-toggle");
  await page.waitForFunction(() => document.getElementById("heal-state").textContent === "healing: paused", null,
    { timeout: 10000 });
  check(await page.textContent("#heal-toggle") === "Resume healing", "paused: the header says 'healing: paused' and offers to resume");
  await page.screenshot({ path: artifact("dashboard-healing-paused.png"), fullPage: false });
  await page.click("#heal-toggle");
  await page.waitForFunction(h => document.getElementById("heal-state").textContent === h, healingAtStart, { timeout: 10000 });
  check(await page.textContent("#heal-toggle") === "Pause healing", "resumed: the header says '" + healingAtStart + "' again");
  // Another operator's pause reaches the page live (the `reconciler` event),
  // sooner than the 5 s refresh.
  const api = path => url.replace(/\/$/, "") + path;
  check((await page.request.post(api("/api/reconciler/pause"))).ok(), "paused through the API");
  await page.waitForFunction(() => document.getElementById("heal-state").textContent === "healing: paused", null,
    { timeout: 4000 });
  check(true, "the header follows: 'healing: paused'");
  check((await page.request.post(api("/api/reconciler/resume"))).ok(), "resumed through the API");
  await page.waitForFunction(h => document.getElementById("heal-state").textContent === h, healingAtStart, { timeout: 4000 });
  check(true, "the header follows: '" + healingAtStart + "'");

  // In Chinese.
  await page.click("#lang");
  await ch.locator(".badge.want", { hasText: "期望：运行中" }).waitFor({ timeout: 5000 });
  await ch.locator(".badge.drift", { hasText: "偏离" }).waitFor({ timeout: 5000 });
  check(await page.textContent("#heal-state") === "自愈：开启", "zh: the badges and the healing switch are translated");
  await page.click("#lang");

  // A phone-width page with a drifting channel on it.
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
  await phone.locator(`article.server[data-server="${server}"] .channel[data-channel="1"] .badge.drift`).waitFor({ timeout: 20000 });
  await phone.waitForSelector("#healing:not([hidden])", { timeout: 10000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "no horizontal overflow at 390 px with the healing switch and a drift badge (overflow " + overflow + " px)");
  await phone.locator(`article.server[data-server="${server}"] .channel[data-channel="1"] button[data-menu="desired"]`).click();
  await phone.waitForSelector("#desired-menu:not([hidden])", { timeout: 5000 });
  const inside = await phone.evaluate(() => {
    const r = document.getElementById("desired-menu").getBoundingClientRect();
    return r.left >= 0 && r.right <= window.innerWidth;
  });
  check(inside, "the desired-state menu fits the phone's width");
  await phone.screenshot({ path: artifact("dashboard-drift-phone.png") });
  await phone.keyboard.press("Escape");
  check(await phone.locator("#desired-menu").isHidden(), "Escape closes the menu");

  // With a healing policy (set through the API: the page has no control
  // for policies) the reconciler starts the channel; the card shows the
  // heal under way, then the channel running and the drift gone.
  await page.evaluate(s => {
    window.__healingSeen = false;
    const seen = () => {
      const c = document.querySelector(`article.server[data-server="${s}"] .channel[data-channel="1"]`);
      if (c && c.querySelector(".badge.healing")) window.__healingSeen = true;
    };
    new MutationObserver(seen).observe(document.getElementById("grid"), { subtree: true, childList: true });
  }, server);
  const policy = await page.request.put(api(`/api/servers/${server}/channels/1/healing`),
    { data: { enabled: true, grace_ms: 0 } });
  check(policy.ok(), "a healing policy is set on the channel (HTTP " + policy.status() + ")");
  await page.waitForFunction(s => {
    const c = document.querySelector(`article.server[data-server="${s}"] .channel[data-channel="1"]`);
    return c && c.dataset.state === "running" && !c.querySelector(".badge.drift");
  }, server, { timeout: 30000 });
  check(true, "healed: the channel runs and its drift badge is gone");
  check(await page.evaluate(() => window.__healingSeen), "the card showed 'healing…' while the heal ran");
  await page.request.delete(api(`/api/servers/${server}/channels/1/healing`));

  // Clearing the channel's setting: unmanaged again, no drift.
  await ch.locator('button[data-menu="desired"]').click();
  await page.click('#desired-menu button[data-desired=""]');
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  await page.click("#confirm-ok");
  await page.waitForFunction(s => {
    const c = document.querySelector(`article.server[data-server="${s}"] .channel[data-channel="1"]`);
    return c && !c.querySelector(".badge.want") && !c.querySelector(".badge.drift");
  }, server, { timeout: 20000 });
  check(true, "cleared: no desired state, no drift badge");

});

// A channel healing gives up on ("degraded"), for real: the demo's
// sim-0007 answers every channel command with 500, so a desired state
// other than the channel's own is tried `limit` times, then left alone.
// The page's "retry healing" clears it; the reconciler tries once more
// and marks it degraded again.
await run("degraded channel browser test", async context => {
  const page = await context.newPage();
  const server = "sim-0007";
  const api = path => new URL(path, url).href;
  await page.goto(url + "#/cards", { waitUntil: "domcontentloaded" });
  const ch = page.locator(`article.server[data-server="${server}"] .channel[data-channel="2"]`);
  await page.waitForSelector(`article.server[data-server="${server}"].st-online .channel[data-channel="2"]`, { timeout: 20000 });
  const observed = await ch.getAttribute("data-state");
  const want = observed === "running" ? "idle" : "running";
  const set = await page.request.put(api(`/api/servers/${server}/channels/2/desired`), { data: { desired: want } });
  check(set.ok(), `channel 2 on ${server} (${observed}) is set to ${want} (HTTP ${set.status()})`);
  const policy = await page.request.put(api(`/api/servers/${server}/channels/2/healing`),
    { data: { grace_ms: 0, limit: 1, backoff_ms: 100, window_ms: 600000 } });
  check(policy.ok(), "with healing on, one attempt per window (HTTP " + policy.status() + ")");
  await ch.locator(".badge.degraded").waitFor({ timeout: 30000 });
  check(await ch.locator(".badge.degraded").textContent() === "degraded", "the failed heal leaves a 'degraded' badge");
  check(/^drift \d+s$/.test(await ch.locator(".badge.drift").textContent()),
    "beside its drift: " + await ch.locator(".badge.drift").textContent());
  check(await ch.evaluate(el => el.classList.contains("degraded")), "the channel card is marked as degraded");
  const drift = await (await page.request.get(api("/api/drift"))).json();
  const mine = drift.drifts.find(d => d.server_id === server && d.channel_id === 2);
  check(mine && mine.degraded && mine.attempts === 1, "the API agrees: degraded after 1 attempt " + JSON.stringify(mine));
  await page.selectOption("#f-channel", "degraded");
  await page.waitForFunction(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden).length === 1, null,
    { timeout: 5000 });
  const shown = await page.evaluate(() => [...document.querySelectorAll("article.server")].filter(c => !c.hidden)[0].dataset.server);
  check(shown === server, "the 'degraded' filter leaves that server alone: " + shown);
  await page.screenshot({ path: artifact("dashboard-degraded.png"), fullPage: false });

  await ch.locator('button[data-heal="retry"]').click();
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  check((await page.textContent("#confirm-text")).includes(server), "retry asks first, naming the server");
  await page.click("#confirm-ok");
  await ch.locator(".busy", { hasText: "healing will try again" }).waitFor({ timeout: 10000 });
  check(true, "the retry's answer is shown on the card");
  // The commands still fail: one more attempt, then degraded again.
  await page.waitForFunction(async s => {
    const d = await (await fetch("/api/drift")).json();
    const x = d.drifts.find(v => v.server_id === s && v.channel_id === 2);
    return x && x.degraded && x.attempts === 1;
  }, server, { timeout: 30000, polling: 250 });
  // The audit is written by the dashboard's event pump, just after.
  const audited = async () => (await (await page.request.get(api("/api/audit?limit=1000"))).json()).entries
    .filter(e => e.server_id === server && e.channel_id === 2 && ["heal_started", "heal_degraded"].includes(e.event));
  let entries = await audited();
  for (let i = 0; i < 40 && entries.filter(e => e.event === "heal_degraded").length < 2; i++) {
    await page.waitForTimeout(250);
    entries = await audited();
  }
  const heals = entries.filter(e => e.event === "heal_started");
  check(heals.length === 2 && heals.every(e => e.who === "reconciler"), "two heals in the audit, by the reconciler: " + heals.length);
  const degraded = entries.filter(e => e.event === "heal_degraded");
  check(degraded.length === 2 && degraded.every(e => e.who === "reconciler"), "and two heal_degraded entries: " + degraded.length);
  await page.request.delete(api(`/api/servers/${server}/channels/2/healing`));
  await page.request.delete(api(`/api/servers/${server}/channels/2/desired`));
});
