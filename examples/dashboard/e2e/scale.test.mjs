// The page at fleet scale, in headless Chromium, run by
// scripts/test.d/40-dashboard-browser.sh against a dashboard over
// `ipvtl-sim --count 10000 --channels 16` (SERVERS), with 1 % of the servers
// changing per sweep (half of them going down, the half that went down
// the sweep before coming back, through the simulator's control endpoint,
// SIM_CONTROL, every POLL_S seconds).
//
// Checks the targets and prints the measured figures:
// - the first overview drawn < 1.5 s after navigation;
// - < 10 000 DOM nodes (every node of the document, text included);
// - JS heap < 60 MB (used, after a collection);
// - no main-thread task over 100 ms during the live updates (Long Tasks
//   API; LIVE_S seconds, 60 by default);
// - < 1 MB transferred per minute after the first load (every byte the
//   page received, the event stream included, per the DevTools protocol).
// Then, at that scale: search narrows the table, a tile's hover and click
// open the server, and a batch chosen by filter (the stalled channels of
// one rack) is previewed, confirmed with its count and run to its report.

import { artifact, check, run, url } from "./browser.mjs";

const servers = Number(process.env.SERVERS || 10000);
const control = process.env.SIM_CONTROL;
const pollS = Number(process.env.POLL_S || 10);
const liveS = Number(process.env.LIVE_S || 60);
if (!control) throw new Error("SIM_CONTROL is not set");

async function faults(ids, fault) {
  const r = await fetch(control + "/faults", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ids, fault }) });
  if (!r.ok) throw new Error("sim control: HTTP " + r.status + " " + await r.text());
}
const idOf = i => "sim-" + String(i).padStart(Math.max(4, String(servers).length), "0");

await run("fleet-scale browser test", async context => {
  const page = await context.newPage();
  await context.addInitScript(() => {
    window.__longTasks = [];
    try {
      new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks.push([e.startTime, e.duration]); })
        .observe({ type: "longtask", buffered: true });
    } catch (_) { /* no Long Tasks API: none recorded, checked below */ }
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  await cdp.send("Network.enable");
  // Every byte received, by path (the event stream's chunks included).
  let bytes = 0, counting = false;
  const paths = new Map(), byPath = new Map();
  const seen = new Map();
  const add = (id, n) => {
    if (!counting || !n) return;
    seen.set(id, (seen.get(id) || 0) + n);
    bytes += n;
    const p = paths.get(id) || "?";
    byPath.set(p, (byPath.get(p) || 0) + n);
  };
  cdp.on("Network.requestWillBeSent", e => paths.set(e.requestId, new URL(e.request.url).pathname));
  cdp.on("Network.dataReceived", e => add(e.requestId, e.encodedDataLength));
  // Response headers are part of a transfer too.
  cdp.on("Network.responseReceived", e => add(e.requestId, e.response.encodedDataLength));
  // A finished request's total, where the chunks did not count it all.
  cdp.on("Network.loadingFinished", e => add(e.requestId, Math.max(0, e.encodedDataLength - (seen.get(e.requestId) || 0))));

  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.body.dataset.drawn, null, { timeout: 30000 });
  const drawn = await page.evaluate(() => performance.getEntriesByName("ipvtl-overview-drawn")[0].startTime);
  const tiles = await page.evaluate(() => Number(document.getElementById("map").dataset.servers));
  console.log(`figure: first overview drawn ${Math.round(drawn)} ms after navigation (${tiles} servers)`);
  check(tiles === servers, `the map has a tile per server (${tiles})`);
  check(drawn < 1500, `first overview drawn < 1.5 s after navigation (${Math.round(drawn)} ms)`);
  await page.waitForSelector("#live.on", { timeout: 20000 });
  await page.screenshot({ path: artifact("scale-overview.png") });

  // Live updates: 1 % of the servers change per sweep.
  const lt0 = await page.evaluate(() => performance.now());
  counting = true;
  const down = [];
  let next = 2;
  const per = Math.max(2, Math.round(servers / 100));
  const t0 = Date.now();
  let sweeps = 0;
  while (Date.now() - t0 < liveS * 1000) {
    const back = down.splice(0, per / 2);
    const fresh = [];
    for (let k = 0; k < per - back.length; k++) { fresh.push(idOf(next)); next = next % (servers - 1) + 2; }
    if (back.length) await faults(back, null);
    await faults(fresh, "down");
    down.push(...fresh);
    sweeps++;
    await new Promise(r => setTimeout(r, Math.min(pollS * 1000, liveS * 1000 - (Date.now() - t0))));
  }
  counting = false;
  const minutes = (Date.now() - t0) / 60000;
  const perMinute = bytes / minutes;
  const version = await page.evaluate(() => window.ipvtlOverview.version());
  const offline = Number(await page.textContent("#t-offline"));
  console.log(`figure: ${(bytes / 1024).toFixed(0)} KiB received in ${(minutes * 60).toFixed(0)} s of live updates ` +
    `(${sweeps} rounds of ${per} servers changing): ${(perMinute / 1024).toFixed(0)} KiB per minute; overview version ${version}`);
  console.log("figure: by path: " + Array.from(byPath).sort((a, b) => b[1] - a[1])
    .map(([p, n]) => `${p} ${(n / 1024).toFixed(1)} KiB`).join(", "));
  check(offline > 0, `the changes reached the page (${offline} offline)`);
  check(perMinute < 1024 * 1024, `transfer after the first load < 1 MB per minute (${(perMinute / 1024).toFixed(0)} KiB)`);
  const tasks = await page.evaluate(t => window.__longTasks.filter(x => x[0] >= t), lt0);
  const worst = tasks.reduce((m, x) => Math.max(m, x[1]), 0);
  const supported = await page.evaluate(() => PerformanceObserver.supportedEntryTypes.includes("longtask"));
  check(supported, "the Long Tasks API is there to measure");
  console.log(`figure: ${tasks.length} main-thread tasks over 50 ms during ${liveS} s of live updates, longest ${Math.round(worst)} ms`);
  const draws = await page.evaluate(t => performance.getEntriesByType("measure").filter(m => m.startTime >= t && m.name.startsWith("ipvtl-draw"))
    .map(m => [m.name, m.duration]), lt0);
  const full = draws.filter(d => d[0] === "ipvtl-draw-full").map(d => d[1]);
  const paints = await page.evaluate(t => performance.getEntriesByName("ipvtl-paint").filter(m => m.startTime >= t).map(m => m.duration), lt0);
  console.log(`figure: ${draws.length} redraws while live (${full.length} with a new layout, longest ${Math.round(Math.max(0, ...full))} ms; ` +
    `longest full paint ${Math.round(Math.max(0, ...paints))} ms from start to end, in slices of a few ms a frame); ` +
    `long tasks at ${tasks.map(x => Math.round((x[0] - lt0) / 1000) + " s: " + Math.round(x[1]) + " ms").join(", ") || "none"}`);
  check(worst < 100, `no main-thread task over 100 ms during the live updates (longest ${Math.round(worst)} ms)`);
  await page.screenshot({ path: artifact("scale-live.png") });

  const nodes = await page.evaluate(() => {
    let n = 0;
    const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL);
    while (w.nextNode()) n++;
    return n;
  });
  await cdp.send("HeapProfiler.collectGarbage");
  const metrics = Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map(m => [m.name, m.value]));
  const heapMb = metrics.JSHeapUsedSize / 1048576;
  console.log(`figure: ${nodes} DOM nodes (DevTools counts ${metrics.Nodes}); JS heap ${heapMb.toFixed(1)} MB used of ` +
    `${(metrics.JSHeapTotalSize / 1048576).toFixed(1)} MB`);
  check(nodes < 10000, `< 10 000 DOM nodes (${nodes})`);
  check(heapMb < 60, `JS heap < 60 MB (${heapMb.toFixed(1)} MB)`);

  // Hover and click a tile: the first of the map (problems first: an offline one).
  const box = await page.locator("#map").boundingBox();
  await page.mouse.move(box.x + 10, box.y + 30);
  await page.waitForSelector("#map-tip:not([hidden])", { timeout: 5000 });
  const tip = await page.textContent("#map-tip");
  check(/sim-\d+/.test(tip), "hovering the first tile shows its server: " + tip.slice(0, 80));
  await page.mouse.click(box.x + 10, box.y + 30);
  await page.waitForFunction(() => location.hash.startsWith("#/servers/"), null, { timeout: 5000 });
  const id = decodeURIComponent(await page.evaluate(() => location.hash.split("/")[2].split("?")[0]));
  await page.waitForSelector(`article.server[data-server="${id}"]`, { timeout: 15000 });
  check(true, `a click opens ${id}'s detail with its card (${await page.evaluate(() => location.hash)})`);
  check(await page.locator("article.server").count() === 1, "and only its card");

  // The table: sorted by CPU, searched down to one server.
  await page.goto(url + "#/list?sort=cpu&dir=-1", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(n => Number(document.getElementById("tbl").dataset.rows) >= n - 200, servers, { timeout: 30000 });
  const rows = await page.locator("#tbl-body .trow").count();
  check(rows > 0 && rows < 100, `the table of ${servers} servers has ${rows} rows in the DOM`);
  const target = idOf(servers - 3);
  await page.fill("#search", target);
  await page.waitForFunction(() => document.getElementById("tbl").dataset.rows === "1", null, { timeout: 5000 });
  check(await page.evaluate(() => location.hash.includes("q=")), "search narrows the table to one and is kept in the URL: " +
    await page.evaluate(() => location.hash));

  // A batch by filter: the stalled channels of rack-b.
  await page.goto(url + "#/?tag=rack-b&ch=stalled", { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.body.dataset.drawn, null, { timeout: 30000 });
  const want = await page.evaluate(() => window.ipvtlOverview.targets("stalled").length);
  check(want > 0, `the fleet has stalled channels in rack-b (${want})`);
  await page.click("#filter-batch");
  await page.selectOption("#fb-state", "stalled");
  await page.waitForFunction(() => /^Dry run: /.test(document.getElementById("fb-preview").textContent), null, { timeout: 15000 });
  const preview = await page.textContent("#fb-preview");
  check(preview.toLowerCase().includes(`restart ${want} channels`), "the dry run previews them: " + preview.slice(0, 120));
  await page.click("#fb-run");
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  check((await page.textContent("#confirm-text")).includes(String(want)), "the confirmation names the count: " + await page.textContent("#confirm-text"));
  await page.click("#confirm-ok");
  await page.waitForFunction(n => new RegExp("^Batch \\d+: " + n + " ok, 0 failed$").test(document.getElementById("batch-status").textContent),
    want, { timeout: 120000, polling: 500 });
  const lines = await page.locator("#batch-report li.ok").count();
  check(lines === want, `the batch ran to its report, one line per channel (${lines})`);
  await page.screenshot({ path: artifact("scale-batch.png") });
});
