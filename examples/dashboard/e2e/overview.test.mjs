// Headless Chromium test of the page's fleet views, run by
// scripts/test.d/40-dashboard-browser.sh against `ipvtl-dashboard --demo 12`:
// the overview map first (problems first, grouped by rack, hover and click
// to a server's detail at #/servers/ID with its card and charts), the
// fleet chart, the virtual table (sortable, searchable), filters kept in
// the URL, live changes without refetching the list, a batch chosen by
// filter (dry run, a confirmation with the count, a per-channel report),
// Chinese and a phone width. See browser.mjs for the environment.

import { artifact, check, run, url } from "./browser.mjs";

await run("overview browser test", async context => {
  const page = await context.newPage();
  const listFetches = [];
  page.on("request", r => { if (new URL(r.url()).pathname === "/api/servers") listFetches.push(r.url()); });

  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.getElementById("map").dataset.servers === "12", null, { timeout: 20000 });
  check(await page.locator("#views a.on").getAttribute("data-view") === "overview", "the overview is the first screen");
  check(await page.locator("article.server").count() === 0, "without a card drawn");
  await page.waitForSelector("#live.on", { timeout: 10000 });
  // The demo's faulty servers (down, hung, flapping) show as offline first.
  await page.waitForFunction(() => Number(document.getElementById("t-offline").textContent) >= 1, null, { timeout: 30000 });
  const groups = await page.evaluate(() => {
    const m = window.ipvtlOverview.model;
    return { first: m.list.filter(s => s.h === "offline").map(s => s.id) };
  });
  check(groups.first.length >= 1, "the model knows the offline servers: " + groups.first.join(", "));

  // Hover the first tile (problems first: an offline server), then click it.
  const box = await page.locator("#map").boundingBox();
  const tile = { x: box.x + 12, y: box.y + 30 };
  await page.mouse.move(tile.x, tile.y);
  await page.waitForSelector("#map-tip:not([hidden])", { timeout: 5000 });
  const tip = await page.textContent("#map-tip");
  const hovered = (tip.match(/sim-\d{4}/) || [])[0];
  check(!!hovered && /offline|error/.test(tip), "the first tile is a server with a problem, and hover says so: " + tip.slice(0, 100));
  await page.screenshot({ path: artifact("overview.png") });
  await page.mouse.click(tile.x, tile.y);
  await page.waitForFunction(id => location.hash === "#/servers/" + id, hovered, { timeout: 5000 });
  await page.waitForSelector(`article.server[data-server="${hovered}"]`, { timeout: 10000 });
  check(await page.locator("article.server").count() === 1, `the click opens #/servers/${hovered} with its card`);
  await page.waitForSelector("#detail-charts svg.chart", { timeout: 10000 });
  check(await page.locator("#detail-charts svg.chart").count() === 2, "and its CPU and running-channel charts");
  await page.selectOption("#detail-range", "3600");
  await page.waitForFunction(() => document.querySelectorAll("#detail-charts svg.chart, #detail-charts .err").length >= 1, null,
    { timeout: 10000 });
  check(await page.locator("#detail-charts svg.chart").count() === 2, "the range picker redraws them from the stored history");

  // A server's detail by URL, with a live restart on its card.
  await page.goto(url + "#/servers/sim-0001", { waitUntil: "domcontentloaded" });
  const ch = page.locator('article.server[data-server="sim-0001"] .channel[data-channel="2"]');
  await ch.waitFor({ timeout: 15000 });
  check(true, "#/servers/sim-0001 opens that server's card");

  // The fleet chart: points every 10 s.
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#fleet-online svg.chart", { timeout: 10000 });
  check(await page.locator("#fleet-online svg.chart path.line").count() >= 1 ||
    (await page.textContent("#fleet-online")).includes("collecting"), "the fleet chart of online servers is drawn");

  // Filters compose and live in the URL; a reload keeps them.
  await page.selectOption("#f-tag", "rack-b");
  await page.selectOption("#f-status", "online");
  await page.waitForFunction(() => location.hash.includes("tag=rack-b") && location.hash.includes("status=online"), null,
    { timeout: 5000 });
  const expect = await page.evaluate(() => window.ipvtlOverview.model.list.filter(s => s.tags.includes("rack-b") && s.h === "online").length);
  await page.waitForFunction(n => document.getElementById("map").dataset.servers === String(n), expect, { timeout: 5000 })
    .catch(() => {});
  const shown = Number(await page.getAttribute("#map", "data-servers"));
  check(shown === expect && shown < 12, `tag and health filters compose: ${shown} tiles (${await page.evaluate(() => location.hash)})`);
  await page.reload({ waitUntil: "domcontentloaded" });
  await page.waitForFunction(n => document.getElementById("map").dataset.servers === String(n), shown, { timeout: 10000 });
  check(await page.inputValue("#f-tag") === "rack-b", "a reload keeps the filters");

  // The table: sortable, virtual, searchable; the same filters.
  await page.click('#views a[data-view="list"]');
  await page.waitForFunction(n => document.getElementById("tbl").dataset.rows === String(n), shown, { timeout: 5000 });
  check(true, `the table lists the same ${shown} servers`);
  await page.selectOption("#f-tag", "");
  await page.selectOption("#f-status", "");
  await page.waitForFunction(() => document.getElementById("tbl").dataset.rows === "12", null, { timeout: 5000 });
  await page.click('#tbl-head button[data-sort="cpu"]');
  await page.waitForFunction(() => location.hash.includes("sort=cpu") && document.querySelector('#tbl-head button[data-sort="cpu"].on'),
    null, { timeout: 5000 });
  const cpus = await page.$$eval("#tbl-body .trow .c-cpu", cs => cs.map(c => c.textContent));
  const tops = await page.$$eval("#tbl-body .trow", rs => rs.map(r => parseFloat(r.style.top)));
  const byTop = cpus.map((c, i) => [tops[i], c === "–" ? -1 : parseFloat(c)]).sort((a, b) => a[0] - b[0]).map(x => x[1]);
  check(byTop.every((v, i) => i === 0 || byTop[i - 1] >= v), "sorted by CPU, highest first: " + byTop.join(" "));
  await page.fill("#search", "sim-0009");
  await page.waitForFunction(() => document.getElementById("tbl").dataset.rows === "1", null, { timeout: 5000 });
  check(true, "search leaves one row");
  await page.screenshot({ path: artifact("overview-table.png") });
  await page.fill("#search", "");

  // Live: a stop through the API reaches the model as an event, without
  // fetching the list again.
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => document.getElementById("map").dataset.servers === "12", null, { timeout: 10000 });
  const before = listFetches.length;
  const api = path => new URL(path, url).href;
  const one = await page.evaluate(() => window.ipvtlOverview.model.byId.get("sim-0009").ch);
  const k = one.indexOf("R") + 1;
  check(k > 0, `sim-0009 has a running channel (${one})`);
  const stop = await page.request.post(api(`/api/servers/sim-0009/channels/${k}/stop`));
  check(stop.ok(), `channel ${k} of sim-0009 stopped through the API`);
  await page.waitForFunction(k => window.ipvtlOverview.model.byId.get("sim-0009").ch[k - 1] === "I", k, { timeout: 15000 });
  check(listFetches.length === before, `the map's model follows by events, no list fetched (${listFetches.length - before})`);

  // A batch by filter: the idle channels of sim-0009 started again.
  await page.fill("#search", "sim-0009");
  await page.waitForFunction(() => document.getElementById("map").dataset.servers === "1", null, { timeout: 5000 });
  await page.click("#filter-batch");
  await page.selectOption("#fb-action", "start");
  await page.selectOption("#fb-state", "idle");
  await page.waitForFunction(() => /^Dry run: /.test(document.getElementById("fb-preview").textContent), null, { timeout: 10000 });
  const preview = await page.textContent("#fb-preview");
  const n = Number((preview.match(/start (\d+) channels/i) || [])[1]);
  check(n >= 1, "the dry run says what it would do: " + preview);
  await page.click("#fb-run");
  await page.waitForSelector("#confirm[open]", { timeout: 5000 });
  check((await page.textContent("#confirm-text")).includes(String(n)), "the confirmation names the count: " + await page.textContent("#confirm-text"));
  await page.click("#confirm-ok");
  await page.waitForFunction(n => new RegExp("^Batch \\d+: " + n + " ok, 0 failed$").test(document.getElementById("batch-status").textContent),
    n, { timeout: 60000, polling: 250 });
  check(await page.locator("#batch-report li.ok").count() === n, `the report lists each of the ${n} channels`);
  await page.screenshot({ path: artifact("overview-batch.png") });
  await page.fill("#search", "");

  // In Chinese.
  await page.click("#lang");
  await page.waitForFunction(() => document.querySelector('#views a[data-view="overview"]').textContent === "总览", null, { timeout: 5000 });
  check(await page.locator("#fleet-online", { hasText: "在线服务器" }).count() === 1, "zh: the views and the charts are translated");
  await page.screenshot({ path: artifact("overview-zh.png") });
  await page.click("#lang");

  // A phone's width.
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(url, { waitUntil: "domcontentloaded" });
  await phone.waitForFunction(() => document.body.dataset.drawn, null, { timeout: 20000 });
  let overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "no horizontal overflow of the overview at 390 px (" + overflow + " px)");
  await phone.screenshot({ path: artifact("overview-phone.png") });
  await phone.goto(url + "#/list", { waitUntil: "domcontentloaded" });
  await phone.waitForFunction(() => document.getElementById("tbl").dataset.rows === "12", null, { timeout: 10000 });
  overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "nor of the table (" + overflow + " px)");
});
