// The page at fleet scale (index.html): the overview map, the server table,
// the fleet and per-server charts, the views and filters kept in the URL,
// and batches chosen by filter. Served as /overview.js after app.js, whose
// event stream, API helper and dialogs it shares (window.ipvtlPage).
//
// Data: one compact snapshot (GET /api/overview: a row per server, see
// src/overview.rs), then `overview` events carrying only the rows that
// changed, applied in order by version; a gap (an event whose `prev` is not
// the version held) or a `resync` fetches the snapshot again. Nothing is
// fetched on a timer while the event stream is up.
//
// Drawing: the map is a <canvas> the size of its viewport over a spacer as
// tall as the whole map (only the visible tiles are painted; hover and
// click are hit-tested from the layout); the table is virtual (only the
// rows in view exist); charts are inline SVG built here (no library).
"use strict";
(function () {
const P = window.ipvtlPage;
const t = window.ipvtlI18n.t;
const esc = P.esc;
const $ = id => document.getElementById(id);

// ---- the model ----
// A server: {i (configuration order), id, name, addr, tags, h (health),
// maint, stale, cpu, lat, ok (last good poll, Unix s), ch (one letter per
// channel), err, run (running channels), sev (problem rank, 0 worst)}.
const M = { v: 0, at: 0, pollMs: 5000, list: [], byId: new Map(), tags: [] };
const SEV = { offline: 0, error: 1, stalled: 2, drift: 3, maintenance: 4, unknown: 5, stale: 6, ok: 7 };
const SEV_NAMES = Object.keys(SEV);

function fromRow(r, i) {
  const s = { i, id: r[0], name: r[1], addr: r[2], tags: r[3] || [], h: r[4], maint: !!(r[5] & 1), stale: !!(r[5] & 2),
    cpu: r[6], lat: r[7], ok: r[8], ch: r[9] || "", err: r[10],
    // Where the map drew it (its group and place): set by layoutMap, here
    // from the start so that every server keeps one shape.
    at: null, j: 0, run: 0, idle: 0, sev: 0 };
  derive(s);
  return s;
}
function derive(s) {
  let run = 0, idle = 0, stalled = false, drift = false;
  for (let k = 0; k < s.ch.length; k++) {
    const c = s.ch.charCodeAt(k);
    if (c === 73 || c === 105) idle++;
    // R r Z z: running (Z stalled); lowercase or D: drifting
    if (c === 82 || c === 114 || c === 90 || c === 122) run++;
    if (c === 90 || c === 122) stalled = true;
    if (c >= 97 || c === 68) drift = true;
  }
  s.run = run; s.idle = idle;
  s.sev = s.h === "offline" ? SEV.offline : s.h === "error" ? SEV.error : stalled ? SEV.stalled : drift ? SEV.drift
    : s.maint ? SEV.maintenance : s.h === "unknown" ? SEV.unknown : s.stale ? SEV.stale : SEV.ok;
}
function sevName(s) { return SEV_NAMES[s.sev]; }

let loading = null, queued = [];
async function loadSnapshot() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const resp = await fetch("/api/overview");
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const d = await resp.json();
      M.v = d.v; M.at = d.at; M.pollMs = d.poll_interval_ms || M.pollMs;
      M.list = d.servers.map(fromRow);
      M.byId = new Map(M.list.map(s => [s.id, s]));
      const tags = new Set();
      for (const s of M.list) for (const x of s.tags) tags.add(x);
      M.tags = Array.from(tags).sort();
      P.setFleetSize(M.list.length);
      fillTags();
      P.showFetchError("");
      const q = queued; queued = [];
      loading = null;
      for (const e of q) applyDelta(e);
      changed(true);
    } catch (e) {
      loading = null;
      P.showFetchError(t("fetch_failed", { e: e.message }));
    }
  })();
  return loading;
}

function applyDelta(d) {
  if (loading || !M.v) { queued.push(d); return; }
  if (d.v <= M.v) return;
  if (d.prev !== M.v || d.reload) { loadSnapshot(); return; }
  M.v = d.v; M.at = d.at;
  let moved = false;
  for (const r of d.rows || []) {
    const old = M.byId.get(r[0]);
    if (!old) { loadSnapshot(); return; }
    const s = fromRow(r, old.i);
    if (s.sev !== old.sev || s.tags.join() !== old.tags.join()) moved = true;
    s.at = old.at; s.j = old.j;
    Object.assign(old, s);
    dirtyTiles.add(old.id);
  }
  changed(moved);
}

// Channel and health changes from the event stream, before the next delta.
const STATE_CODE = { running: "R", idle: "I", stopping: "S" };
function liveChannel(d) {
  const s = M.byId.get(d.server_id);
  if (!s) return;
  const k = d.channel_id - 1;
  if (k < 0 || k >= s.ch.length) return;
  const old = s.ch[k];
  let c = STATE_CODE[d.to] || "U";
  if (old === "D") c = "D"; else if (old >= "a") c = c.toLowerCase();
  s.ch = s.ch.slice(0, k) + c + s.ch.slice(k + 1);
  const sev = s.sev;
  derive(s);
  dirtyTiles.add(s.id);
  changed(s.sev !== sev);
}
function liveHealth(d) {
  const s = M.byId.get(d.server_id);
  if (!s || !d.to) return;
  const sev = s.sev;
  s.h = d.to;
  if (d.error) s.err = d.error;
  derive(s);
  dirtyTiles.add(s.id);
  changed(s.sev !== sev);
}

// ---- filters and routes, kept in the URL ----
// #/ (overview), #/list, #/cards, #/servers/ID; then ?q=&status=&tag=&ch=&group=&sort=&dir=
const F = { q: "", status: "", tag: "", ch: "", group: "", sort: "sev", dir: 1 };
let route = { view: "overview", id: null };
function parseHash() {
  const h = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [path, query] = h.split("?");
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "servers" && parts[1]) route = { view: "server", id: parts.slice(1).join("/") };
  else if (parts[0] === "list") route = { view: "list", id: null };
  else if (parts[0] === "cards") route = { view: "cards", id: null };
  else route = { view: "overview", id: null };
  const p = new URLSearchParams(query || "");
  F.q = p.get("q") || ""; F.status = p.get("status") || ""; F.tag = p.get("tag") || ""; F.ch = p.get("ch") || "";
  F.group = p.get("group") || ""; F.sort = p.get("sort") || "sev"; F.dir = p.get("dir") === "-1" ? -1 : 1;
  $("search").value = F.q; $("f-status").value = F.status; $("f-channel").value = F.ch;
  if ($("f-tag").value !== F.tag) { ensureOption($("f-tag"), F.tag); $("f-tag").value = F.tag; }
  if (F.group) { ensureOption($("group"), F.group); $("group").value = F.group; }
}
function ensureOption(sel, v) {
  if (!v || Array.from(sel.options).some(o => o.value === v)) return;
  const o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o);
}
function query() {
  const p = new URLSearchParams();
  if (F.q) p.set("q", F.q);
  if (F.status) p.set("status", F.status);
  if (F.tag) p.set("tag", F.tag);
  if (F.ch) p.set("ch", F.ch);
  if (F.group) p.set("group", F.group);
  if (F.sort !== "sev") p.set("sort", F.sort);
  if (F.dir !== 1) p.set("dir", "-1");
  const s = p.toString();
  return s ? "?" + s : "";
}
function hashFor(view, id) {
  const path = view === "server" ? "/servers/" + encodeURIComponent(id) : view === "list" ? "/list" : view === "cards" ? "/cards" : "/";
  return "#" + path + query();
}
function go(view, id) { location.hash = hashFor(view, id); }
function syncUrl() {
  const want = hashFor(route.view, route.id);
  if (location.hash !== want && !(location.hash === "" && want === "#/")) history.replaceState(null, "", want);
}
function readFilters() {
  F.q = $("search").value.trim(); F.status = $("f-status").value; F.tag = $("f-tag").value; F.ch = $("f-channel").value;
  F.group = $("group").value === groupDefault() ? "" : $("group").value;
  syncUrl();
  P.filtersChanged();
  changed(true);
}

function hasCode(s, test) { for (let k = 0; k < s.ch.length; k++) if (test(s.ch[k])) return true; return false; }
const CH_TEST = {
  running: c => c === "R" || c === "r" || c === "Z" || c === "z",
  idle: c => c === "I" || c === "i",
  stopping: c => c === "S" || c === "s",
  stalled: c => c === "Z" || c === "z",
  drifting: c => c === "D" || c >= "a",
  degraded: c => c === "D",
};
function matches(s) {
  if (F.q) {
    const hay = (s.id + " " + s.name + " " + s.addr + " " + s.tags.join(" ")).toLowerCase();
    if (!F.q.toLowerCase().split(/\s+/).every(w => hay.includes(w))) return false;
  }
  if (F.status === "stale") { if (!s.stale) return false; }
  else if (F.status === "maintenance") { if (!s.maint) return false; }
  else if (F.status && s.h !== F.status) return false;
  if (F.tag && !s.tags.includes(F.tag)) return false;
  if (F.ch && CH_TEST[F.ch] && !hasCode(s, CH_TEST[F.ch])) return false;
  return true;
}
/** The channels a filter selects: each matching server's channels in the chosen state. */
function channelTargets(state) {
  const test = CH_TEST[state];
  const out = [];
  for (const s of M.list) {
    // Never offline, failing or maintenance servers: nothing to act on there.
    if (!matches(s) || s.maint || s.h !== "online") continue;
    for (let k = 0; k < s.ch.length; k++) if (!test || test(s.ch[k])) out.push({ server_id: s.id, channel_id: k + 1 });
  }
  return out;
}

// ---- redraw scheduling ----
let relayout = true, drawQueued = false, lastFull = 0;
const dirtyTiles = new Set();
function changed(layout) {
  if (layout) relayout = true;
  if (drawQueued) return;
  drawQueued = true;
  // A full layout at most every 700 ms; changed tiles at once.
  const wait = relayout ? Math.max(0, 700 - (performance.now() - lastFull)) : 0;
  setTimeout(() => requestAnimationFrame(draw), wait);
}
function draw() {
  const t0 = performance.now();
  drawQueued = false;
  const full = relayout;
  if (full) { relayout = false; lastFull = performance.now(); }
  totals();
  if (route.view === "overview") {
    if (full) {
      // In slices, then a paint in slices (see layoutMap and paintSlice).
      layoutMap();
    } else {
      paintMap(false);
    }
  } else if (route.view === "list") {
    if (full) sortTable();
    paintTable(full);
  }
  dirtyTiles.clear();
  // How long each draw took, full or not (the scale test prints the longest).
  performance.measure(full ? "ipvtl-draw-full" : "ipvtl-draw", { start: t0 });
}
// When the first overview with data was painted (the scale test reads it).
function markDrawn() {
  if (M.list.length && route.view === "overview" && !document.body.dataset.drawn) {
    document.body.dataset.drawn = String(Math.round(performance.now()));
    performance.mark("ipvtl-overview-drawn");
  }
}

function totals() {
  let on = 0, off = 0, err = 0, run = 0, idle = 0, cpu = 0, cpuN = 0;
  for (const s of M.list) {
    if (s.h === "online") on++; else if (s.h === "offline") off++; else if (s.h === "error") err++;
    run += s.run; idle += s.idle;
    if (s.cpu != null && s.h === "online") { cpu += s.cpu; cpuN++; }
  }
  $("t-servers").textContent = M.list.length;
  $("t-online").textContent = on; $("t-offline").textContent = off; $("t-error").textContent = err;
  $("t-running").textContent = run; $("t-idle").textContent = idle;
  $("t-cpu").textContent = cpuN ? (cpu / cpuN).toFixed(1) + "%" : "–";
}

// ---- the map ----
const COLORS = {
  tile: { online: "#e3f1e6", offline: "#f6c9c6", error: "#f8dcc0", unknown: "#e3e6ea", maintenance: "#e4daf2" },
  edge: { online: "#9cc9a6", offline: "#c62828", error: "#b35900", unknown: "#9aa4b0", maintenance: "#7048a8" },
  dot: { R: "#1a7f37", I: "#b8c0ca", S: "#e08a00", U: "#6b7480", Z: "#f5b400", D: "#c62828", drift: "#b35900" },
};
const HEAD = 22;       // a group's heading, px
let L = { groups: [], height: 0, D: 4, gap: 1, pad: 2, pitch: 20, cols: 4, perRow: 1, width: 0, shown: 0 };

function groupDefault() {
  // The first tag prefix before a '-' that several servers share (rack-a: rack).
  const prefixes = new Map();
  for (const x of M.tags) { const i = x.indexOf("-"); if (i > 0) prefixes.set(x.slice(0, i), (prefixes.get(x.slice(0, i)) || 0) + 1); }
  for (const p of ["rack", "site"]) if (prefixes.has(p)) return p;
  let best = "", n = 0;
  for (const [p, c] of prefixes) if (c > n) { best = p; n = c; }
  return best || "none";
}
function groupKey(s, g) {
  if (g === "none") return "";
  for (const x of s.tags) if (x.startsWith(g + "-")) return x;
  if (s.tags.includes(g)) return g;
  return "";
}
// The layout goes through the fleet in slices of a few milliseconds (a
// task each), then places the groups and starts a full paint; until it is
// done, hover, click and changed tiles use the previous layout.
let layoutJob = null;
function layoutMap() {
  layoutJob = { width: $("map-scroll").clientWidth, g: F.group || groupDefault(), groups: new Map(), i: 0, shown: 0, maxCh: 1,
    list: M.list };
  layoutSlice();
}
function layoutSlice() {
  const job = layoutJob;
  if (!job) return;
  if (job.list !== M.list) { layoutMap(); return; }   // a new snapshot: start again
  const t0 = performance.now(), list = job.list, groups = job.groups, g = job.g;
  while (job.i < list.length && performance.now() - t0 < 6) {
    for (const e = Math.min(list.length, job.i + 500); job.i < e; job.i++) {
      const s = list[job.i];
      if (!matches(s)) continue;
      job.shown++;
      if (s.ch.length > job.maxCh) job.maxCh = s.ch.length;
      const k = groupKey(s, g);
      let grp = groups.get(k);
      if (!grp) { grp = { key: k, servers: [], buckets: SEV_NAMES.map(() => []), worst: 99, problems: 0, counts: {} }; groups.set(k, grp); }
      // In configuration order within each problem rank: no sort needed.
      grp.buckets[s.sev].push(s);
      if (s.sev < grp.worst) grp.worst = s.sev;
      if (s.sev < SEV.ok) { grp.problems++; grp.counts[sevName(s)] = (grp.counts[sevName(s)] || 0) + 1; }
    }
  }
  if (job.i < list.length) { setTimeout(layoutSlice, 0); return; }
  layoutJob = null;
  const n = job.shown, maxCh = job.maxCh, width = job.width;
  const D = n <= 60 ? 9 : n <= 300 ? 6 : n <= 2500 ? 4 : 3;
  const cols = Math.ceil(Math.sqrt(maxCh)), rows = Math.ceil(maxCh / cols);
  const pad = 2, gap = 1;
  const tileW = pad * 2 + cols * (D + gap) - gap, tileH = pad * 2 + rows * (D + gap) - gap;
  const pitchX = tileW + 3, pitchY = tileH + 3;
  const perRow = Math.max(1, Math.floor((width - 8) / pitchX));
  // Problems first: groups by their worst server, then by problem count;
  // servers by problem rank, then configuration order.
  const sortedGroups = Array.from(groups.values()).sort((a, b) => (a.worst - b.worst) || (b.problems - a.problems) ||
    (a.key === "" ? 1 : b.key === "" ? -1 : a.key < b.key ? -1 : 1));
  let y = 0;
  for (const grp of sortedGroups) {
    grp.servers = [].concat(...grp.buckets);
    grp.buckets = null;
    grp.y = y;
    grp.rows = Math.ceil(grp.servers.length / perRow);
    y += HEAD + grp.rows * pitchY + 6;
    grp.y1 = y;
  }
  L = { groups: sortedGroups, height: y, D, gap, pad, cols, tileW, tileH, pitchX, pitchY, perRow, width, shown: n, gname: g };
  for (const grp of sortedGroups) grp.servers.forEach((s, j) => { s.at = grp; s.j = j; });
  $("map-spacer").style.height = Math.max(0, y - mapViewHeight()) + "px";
  $("map").dataset.servers = String(n);
  $("map").setAttribute("aria-label", t("map_label", { n }));
  $("empty").style.display = M.list.length && !n && route.view !== "cards" && route.view !== "server" ? "block" : "none";
  if (route.view === "overview") requestAnimationFrame(() => { paintMap(true); dirtyTiles.clear(); });
}
function mapViewHeight() { return Math.min(L.height, $("map-scroll").clientHeight || 600); }

// The map is painted into a pixel buffer (an ImageData the canvas's size)
// and put on the canvas in one call: thousands of small rectangles cost a
// few typed-array writes each, not a canvas path each. Only the group
// headings are canvas text.
let px = null;   // {img, buf (Uint32Array), w, h (device pixels), dpr}
const packed = new Map();
function rgba(hex) {
  let v = packed.get(hex);
  if (v === undefined) {
    const n = parseInt(hex.slice(1), 16);
    // ImageData is RGBA in memory: little-endian 0xAABBGGRR.
    v = ((255 << 24) | ((n & 255) << 16) | (n & 0xff00) | ((n >> 16) & 255)) >>> 0;
    packed.set(hex, v);
  }
  return v;
}
function fillPx(x, y, w, h, color) {
  const d = px.dpr;
  let x0 = Math.round(x * d), y0 = Math.round(y * d);
  let x1 = Math.round((x + w) * d), y1 = Math.round((y + h) * d);
  if (x0 < 0) x0 = 0; if (y0 < 0) y0 = 0;
  if (x1 > px.w) x1 = px.w; if (y1 > px.h) y1 = px.h;
  const buf = px.buf, stride = px.w;
  if (x1 - x0 <= 12) {
    // A dot: plain stores beat a fill() call per row.
    for (let yy = y0; yy < y1; yy++) for (let i = yy * stride + x0, e = yy * stride + x1; i < e; i++) buf[i] = color;
  } else {
    for (let yy = y0; yy < y1; yy++) buf.fill(color, yy * stride + x0, yy * stride + x1);
  }
}
function paintMap(full) {
  const cv = $("map"), wrap = $("map-scroll");
  const dpr = window.devicePixelRatio || 1;
  const w = L.width, h = Math.max(40, mapViewHeight());
  const W = Math.round(w * dpr), H = Math.round(h * dpr);
  const ctx = cv.getContext("2d");
  if (cv.width !== W || cv.height !== H || !px) {
    cv.width = W; cv.height = H;
    cv.style.width = w + "px"; cv.style.height = h + "px";
    const img = ctx.createImageData(W, H);
    px = { img, buf: new Uint32Array(img.data.buffer), w: W, h: H, dpr };
    full = true;
  }
  const top = wrap.scrollTop;
  if (!full) {
    for (const id of dirtyTiles) {
      const s = M.byId.get(id);
      if (!s || !s.at || L.groups.indexOf(s.at) < 0 || s.at.servers[s.j] !== s) continue;
      const [x, y0] = tilePos(s.at, s.j);
      if (y0 - top + L.tileH < 0 || y0 - top > h) continue;
      paintTile(s.at, s.j, top, h);
      ctx.putImageData(px.img, 0, 0, Math.floor(x * dpr), Math.floor((y0 - top) * dpr), Math.ceil(L.tileW * dpr) + 1, Math.ceil(L.tileH * dpr) + 1);
    }
    return;
  }
  px.buf.fill(rgba("#ffffff"));
  const heads = [], jobs = [];
  for (const grp of L.groups) {
    if (grp.y1 < top || grp.y > top + h) continue;
    const parts = Object.keys(grp.counts).sort((a, b) => SEV[a] - SEV[b]).map(k => grp.counts[k] + " " + t(k === "drift" ? "drifting" : k));
    heads.push([(grp.key || t("no_group", { g: L.gname })) + " · " + t("n_servers", { n: grp.servers.length }) +
      (parts.length ? " · " + parts.join(", ") : ""), grp.y - top + HEAD / 2]);
    const first = Math.max(0, Math.floor((top - grp.y - HEAD) / L.pitchY));
    const last = Math.min(grp.rows - 1, Math.floor((top + h - grp.y - HEAD) / L.pitchY));
    for (let r = first; r <= last; r++) {
      for (let c = 0; c < L.perRow; c++) {
        const j = r * L.perRow + c;
        if (j >= grp.servers.length) break;
        jobs.push(grp, j);
      }
    }
  }
  paintJob = { jobs, heads, k: 0, top, h, ctx, dpr, start: performance.now() };
  paintSlice();
}
// A full paint goes in slices of a few milliseconds, one a frame, so that
// no task holds the main thread long even with the machine busy.
let paintJob = null;
function paintSlice() {
  const job = paintJob;
  if (!job) return;
  const t0 = performance.now();
  while (job.k < job.jobs.length && performance.now() - t0 < 6) {
    for (let n = 0; n < 50 && job.k < job.jobs.length; n++, job.k += 2) paintTile(job.jobs[job.k], job.jobs[job.k + 1], job.top, job.h);
  }
  const ctx = job.ctx;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.putImageData(px.img, 0, 0);
  ctx.setTransform(job.dpr, 0, 0, job.dpr, 0, 0);
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#1d2430";
  for (const [text, y] of job.heads) ctx.fillText(text, 4, y);
  if (job.k < job.jobs.length) { requestAnimationFrame(paintSlice); return; }
  paintJob = null;
  performance.measure("ipvtl-paint", { start: job.start || t0 });
  markDrawn();
}
function tilePos(grp, j) {
  return [4 + (j % L.perRow) * L.pitchX, grp.y + HEAD + Math.floor(j / L.perRow) * L.pitchY];
}
// A tile into the pixel buffer: its background, a 1 px edge, a dot per channel.
function paintTile(grp, j, top, h) {
  const s = grp.servers[j];
  const [x, y0] = tilePos(grp, j);
  const y = y0 - top;
  if (y + L.tileH < 0 || y > h) return;
  const kind = s.maint ? "maintenance" : s.h;
  const W = L.tileW, H = L.tileH;
  fillPx(x, y, W, H, rgba(s.stale ? "#a07000" : COLORS.edge[kind] || COLORS.edge.unknown));
  fillPx(x + 1, y + 1, W - 2, H - 2, rgba(COLORS.tile[kind] || COLORS.tile.unknown));
  const dim = s.h !== "online";
  for (let k = 0; k < s.ch.length; k++) {
    const c = s.ch[k];
    const col = dim ? "#9aa4b0" : c === "D" ? COLORS.dot.D : c >= "a" ? COLORS.dot.drift : COLORS.dot[c] || COLORS.dot.U;
    fillPx(x + L.pad + (k % L.cols) * (L.D + L.gap), y + L.pad + Math.floor(k / L.cols) * (L.D + L.gap), L.D, L.D, rgba(col));
  }
}
function hit(ev) {
  const cv = $("map"), r = cv.getBoundingClientRect();
  const x = ev.clientX - r.left, y = ev.clientY - r.top + $("map-scroll").scrollTop;
  for (const grp of L.groups) {
    if (y < grp.y + HEAD || y >= grp.y1) continue;
    const c = Math.floor((x - 4) / L.pitchX), row = Math.floor((y - grp.y - HEAD) / L.pitchY);
    if (c < 0 || c >= L.perRow) return null;
    const [tx, ty] = tilePos(grp, row * L.perRow + c);
    if (x > tx + L.tileW || y > ty + L.tileH) return null;
    return grp.servers[row * L.perRow + c] || null;
  }
  return null;
}
function fmtAgo(unix) { return unix == null ? "–" : P.fmtAge(Math.max(0, Date.now() / 1000 - unix)); }
function tipHtml(s) {
  const counts = {};
  for (const c of s.ch) counts[c] = (counts[c] || 0) + 1;
  const chs = [["R", "running"], ["I", "idle"], ["S", "stopping"], ["Z", "stalled"], ["D", "degraded"]]
    .map(([c, k]) => { const n = (counts[c] || 0) + (counts[c.toLowerCase()] || 0); return n ? n + " " + t(k) : ""; })
    .filter(Boolean).join(", ");
  const drift = Array.from(s.ch).filter(c => c >= "a").length;
  return "<b>" + esc(s.name) + "</b> <span class=\"muted\">" + esc(s.id) + " · " + esc(s.addr) + "</span><br>" +
    '<span class="badge ' + esc(s.h) + '">' + esc(t(s.h)) + "</span>" +
    (s.maint ? ' <span class="badge maint">' + esc(t("maintenance")) + "</span>" : "") +
    (s.stale ? ' <span class="badge stale">' + esc(t("stale")) + "</span>" : "") +
    " " + esc(t("cpu")) + " " + (s.cpu != null ? s.cpu + "%" : "–") +
    (s.lat != null ? " · " + esc(t("latency", { ms: s.lat })) : "") + "<br>" +
    esc(chs) + (drift ? " · " + drift + " " + esc(t("drifting")) : "") +
    (s.tags.length ? "<br>" + esc(s.tags.join(", ")) : "") +
    (s.err ? '<br><span class="err">' + esc(s.err) + "</span>" : "");
}
function onMapMove(ev) {
  const s = hit(ev), tip = $("map-tip");
  $("map").classList.toggle("pointer", !!s);
  if (!s) { tip.hidden = true; return; }
  tip.innerHTML = tipHtml(s);
  tip.hidden = false;
  const r = $("map-scroll").getBoundingClientRect();
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = ev.clientX - r.left + 14, y = ev.clientY - r.top + 14;
  if (x + w > r.width) x = Math.max(0, ev.clientX - r.left - w - 10);
  if (y + h > r.height) y = Math.max(0, ev.clientY - r.top - h - 10);
  tip.style.left = x + "px"; tip.style.top = y + "px";
}

// ---- the table ----
const ROW_H = 30;
let sorted = [];
const COLS = [
  ["server", "col_server"], ["sev", "col_health"], ["tags", "col_tags"], ["cpu", "cpu"], ["run", "col_running"],
  ["lat", "col_latency"], ["poll", "col_poll"], ["age", "col_stale"],
];
function pollAt(s) { return s.h === "online" && !s.stale ? M.at : s.ok; }
function staleAge(s) { return s.h === "online" && !s.stale ? 0 : s.ok == null ? Infinity : Date.now() / 1000 - s.ok; }
const KEY = {
  server: s => s.i, sev: s => s.sev, tags: s => s.tags.join(","), cpu: s => s.cpu == null ? -1 : s.cpu, run: s => s.run,
  lat: s => s.lat == null ? Infinity : s.lat, poll: s => pollAt(s) || 0, age: s => staleAge(s),
};
function sortTable() {
  const key = KEY[F.sort] || KEY.sev, dir = F.dir;
  sorted = M.list.filter(matches);
  sorted.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -dir : x > y ? dir : 0) || (a.i - b.i); });
  $("tbl-body").style.height = sorted.length * ROW_H + "px";
  $("tbl").dataset.rows = String(sorted.length);
  for (const b of $("tbl-head").querySelectorAll("button[data-sort]")) {
    const on = b.dataset.sort === F.sort;
    b.classList.toggle("on", on);
    b.closest("[role=columnheader]").setAttribute("aria-sort", on ? (F.dir === 1 ? "ascending" : "descending") : "none");
    b.textContent = t(COLS.find(c => c[0] === b.dataset.sort)[1]) + (on ? (F.dir === 1 ? " ▲" : " ▼") : "");
  }
}
function headTable() {
  $("tbl-head").innerHTML = COLS.map(([k]) => '<div role="columnheader" class="c-' + k + '"><button data-sort="' + k + '"></button></div>').join("");
}
let tableDrawn = "";
function paintTable() {
  const sc = $("tbl-scroll"), body = $("tbl-body");
  const first = Math.max(0, Math.floor(sc.scrollTop / ROW_H) - 4);
  const count = Math.ceil((sc.clientHeight || 600) / ROW_H) + 8;
  let h = "";
  for (let n = first; n < Math.min(sorted.length, first + count); n++) {
    const s = sorted[n];
    const age = staleAge(s);
    h += '<div role="row" class="trow sev-' + sevName(s) + '" data-server="' + esc(s.id) + '" data-top="' + n * ROW_H + '">' +
      '<div role="cell" class="c-server"><a href="' + esc(hashFor("server", s.id)) + '">' + esc(s.name) + "</a> <span class=\"muted\">" + esc(s.id) + "</span></div>" +
      '<div role="cell" class="c-sev"><span class="badge ' + esc(s.maint ? "maint" : s.h) + '">' + esc(t(s.maint ? "maintenance" : s.h)) + "</span>" +
      (s.sev < SEV.ok && s.sev !== SEV.maintenance && s.sev !== SEV[s.h] ? ' <span class="badge ' + (s.sev === SEV.stalled ? "stalled" : s.sev === SEV.stale ? "stale" : "drift") + '">' + esc(t(sevName(s) === "drift" ? "drifting" : sevName(s))) + "</span>" : "") + "</div>" +
      '<div role="cell" class="c-tags">' + esc(s.tags.join(", ")) + "</div>" +
      '<div role="cell" class="c-cpu">' + (s.cpu != null ? s.cpu + "%" : "–") + "</div>" +
      '<div role="cell" class="c-run">' + s.run + "/" + s.ch.length + "</div>" +
      '<div role="cell" class="c-lat">' + (s.lat != null ? s.lat + " ms" : "–") + "</div>" +
      '<div role="cell" class="c-poll">' + esc(fmtAgo(pollAt(s))) + "</div>" +
      '<div role="cell" class="c-age">' + (age ? esc(isFinite(age) ? P.fmtAge(age) : t("never_ok")) : "") + "</div></div>";
  }
  if (h !== tableDrawn) {
    body.innerHTML = h;
    for (const r of body.children) r.style.top = r.dataset.top + "px";
    tableDrawn = h;
  }
}

// ---- charts (inline SVG) ----
// A line chart of `series` ([{label, cls, points: [[t, v]...]}]) over
// [t0, t1], y from 0 to `ymax` (or the data's maximum).
function chartSvg(title, series, t0, t1, ymax, unit) {
  const W = 600, H = 150, L0 = 44, R0 = 8, T0 = 20, B0 = 20;
  let max = ymax || 0;
  if (!ymax) for (const s of series) for (const p of s.points) if (p[1] != null && p[1] > max) max = p[1];
  max = max || 1;
  const X = v => L0 + (W - L0 - R0) * (t1 > t0 ? (v - t0) / (t1 - t0) : 1);
  const Y = v => T0 + (H - T0 - B0) * (1 - v / max);
  let g = "";
  for (const f of [0, 0.5, 1]) {
    const y = Y(max * f).toFixed(1);
    g += '<line class="grid" x1="' + L0 + '" x2="' + (W - R0) + '" y1="' + y + '" y2="' + y + '"/>' +
      '<text class="axis" x="' + (L0 - 4) + '" y="' + y + '" text-anchor="end" dominant-baseline="middle">' + esc(fmtNum(max * f) + (unit || "")) + "</text>";
  }
  const tl = ts => new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  g += '<text class="axis" x="' + L0 + '" y="' + (H - 4) + '">' + esc(tl(t0)) + "</text>" +
    '<text class="axis" x="' + (W - R0) + '" y="' + (H - 4) + '" text-anchor="end">' + esc(tl(t1)) + "</text>";
  let lines = "", legend = "";
  series.forEach((s, k) => {
    let d = "", pen = false;
    for (const p of s.points) {
      if (p[1] == null) { pen = false; continue; }
      d += (pen ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1);
      pen = true;
    }
    if (d) lines += '<path class="line ' + s.cls + '" d="' + d + '"/>';
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    legend += '<text class="legend ' + s.cls + '" x="' + (L0 + k * 200) + '" y="12">' + esc(s.label + (last != null ? ": " + fmtNum(last) + (unit || "") : "")) + "</text>";
  });
  const empty = series.every(s => s.points.length < 2) ? '<text class="axis" x="' + (W / 2) + '" y="' + (H / 2) + '" text-anchor="middle">' + esc(t("chart_empty")) + "</text>" : "";
  return '<svg class="chart" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + esc(title) + '">' + g + lines + legend + empty + "</svg>";
}
function fmtNum(v) { return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1); }

let fleetPoints = [], fleetLoaded = 0;
async function loadFleet() {
  try {
    const r = await P.api("GET", "/api/overview/history");
    fleetPoints = r.points || [];
    fleetLoaded = Date.now();
    drawFleet();
  } catch (_) { /* the chart fills in later */ }
}
function drawFleet() {
  const range = Number($("fleet-range").value) || 3600;
  const now = Date.now() / 1000, t0 = now - range;
  // The points since the last fetch come from the model (one per minute at most).
  const pts = fleetPoints.filter(p => p[0] >= t0);
  $("fleet-online").innerHTML = chartSvg(t("online_servers"), [
    { label: t("online_servers"), cls: "s-ok", points: pts.map(p => [p[0], p[2]]) },
    { label: t("offline") + " + " + t("error"), cls: "s-bad", points: pts.map(p => [p[0], p[3] + p[4]]) },
  ], t0, now, pts.length ? Math.max(...pts.map(p => p[1])) : 0, "");
  $("fleet-running").innerHTML = chartSvg(t("running_channels"), [
    { label: t("running_channels"), cls: "s-run", points: pts.map(p => [p[0], p[5]]) },
    { label: t("problem_channels"), cls: "s-warn", points: pts.map(p => [p[0], p[7]]) },
  ], t0, now, pts.length ? Math.max(...pts.map(p => p[6])) : 0, "");
}

async function loadServerCharts(id) {
  const box = $("detail-charts");
  const range = $("detail-range").value;
  let series;
  try {
    if (range === "ring") {
      const r = await P.api("GET", "/api/servers/" + encodeURIComponent(id) + "/history");
      series = r.samples.map(s => [s.t / 1000, s.cpu_avg, s.running_channels]);
    } else {
      const secs = Number(range), step = secs > 6 * 3600 ? "1m" : "10s";
      const since = Math.floor(Date.now() / 1000 - secs);
      const r = await P.api("GET", "/api/servers/" + encodeURIComponent(id) + "/history?since=" + since + "&step=" + step);
      series = r.points.map(p => [p.at, p.cpu_avg, p.running_channels]);
    }
  } catch (e) {
    box.innerHTML = '<p class="err">' + esc(e.message) + "</p>";
    return;
  }
  if (route.view !== "server" || route.id !== id) return;
  const now = Date.now() / 1000;
  const t0 = range === "ring" ? (series.length ? series[0][0] : now) : now - Number(range);
  const s = M.byId.get(id);
  box.innerHTML = chartSvg(t("cpu"), [{ label: t("cpu"), cls: "s-run", points: series.map(p => [p[0], p[1]]) }], t0, now, 100, "%") +
    chartSvg(t("running_channels"), [{ label: t("running_channels"), cls: "s-ok", points: series.map(p => [p[0], p[2]]) }],
      t0, now, s ? s.ch.length : 0, "");
}

// ---- views ----
function show() {
  parseHash();
  const v = route.view;
  document.body.dataset.view = v;
  $("v-overview").hidden = v !== "overview";
  $("v-list").hidden = v !== "list";
  $("v-detail").hidden = v !== "server";
  $("grid").hidden = v !== "cards" && v !== "server";
  $("cards-note").hidden = v !== "cards";
  for (const a of document.querySelectorAll("#views a")) a.classList.toggle("on", a.dataset.view === v);
  for (const a of document.querySelectorAll("#views a")) a.href = hashFor(a.dataset.view);
  $("map-tip").hidden = true;
  if (v === "server") {
    const s = M.byId.get(route.id);
    $("detail-title").textContent = s ? s.name + " · " + s.id : route.id;
    loadServerCharts(route.id);
  }
  P.setCardScope(v === "server" ? { one: route.id } : v === "cards" ? { filtered: true } : null);
  relayout = true;
  tableDrawn = "";
  changed(true);
}

// ---- batch by filter ----
let fbatch = null;
function openFilterBatch() {
  const d = $("fbatch");
  $("fb-state").value = F.ch && CH_TEST[F.ch] ? F.ch : "running";
  $("fb-preview").textContent = "";
  $("fb-run").disabled = true;
  fbatch = null;
  d.showModal();
  previewFilterBatch();
}
async function previewFilterBatch() {
  const state = $("fb-state").value, action = $("fb-action").value;
  const targets = channelTargets(state === "any" ? "" : state);
  const servers = new Set(targets.map(x => x.server_id)).size;
  $("fb-scope").textContent = t("fb_scope", { filter: describeFilter(), n: servers });
  $("fb-run").disabled = true;
  fbatch = null;
  if (!targets.length) { $("fb-preview").textContent = t("fb_none"); return; }
  $("fb-preview").textContent = t("fb_planning");
  try {
    const r = await P.api("POST", "/api/batch", { action, targets: targets.slice(0, 10000), dry_run: true });
    const sample = r.targets.slice(0, 6).map(x => x.server_id + "/" + x.channel_id).join(", ");
    $("fb-preview").textContent = t("fb_plan", { action: t(action), n: r.count, servers }) + (sample ? " — " + sample + (r.count > 6 ? ", …" : "") : "");
    fbatch = { action, targets: targets.slice(0, 10000), count: r.count };
    $("fb-run").disabled = r.count === 0;
  } catch (e) {
    $("fb-preview").textContent = e.message;
  }
}
function describeFilter() {
  const parts = [];
  if (F.q) parts.push("“" + F.q + "”");
  if (F.status) parts.push(t(F.status));
  if (F.tag) parts.push(F.tag);
  return parts.join(" · ") || t("all_servers");
}
async function runFilterBatch() {
  if (!fbatch) return;
  const { action, targets, count } = fbatch;
  $("fbatch").close();
  if (!(await P.confirmDialog(t("confirm_fbatch", { action: t(action), n: count })))) return;
  try {
    const r = await P.api("POST", "/api/batch", { action, targets, max_parallel: 8 });
    P.followBatch(r.batch_id, r.count);
  } catch (e) {
    P.showOpError(e.message);
  }
}

// ---- wiring ----
function fillTags() {
  const sel = $("f-tag"), cur = F.tag;
  const have = Array.from(sel.options).map(o => o.value).join("\n");
  const want = [""].concat(M.tags).join("\n");
  if (have !== want) {
    sel.innerHTML = '<option value="" data-i18n="any_tag">' + esc(t("any_tag")) + "</option>" + M.tags.map(x => "<option>" + esc(x) + "</option>").join("");
  }
  sel.value = cur;
  const g = $("group"), prefixes = new Set(["none"]);
  for (const x of M.tags) { const i = x.indexOf("-"); if (i > 0) prefixes.add(x.slice(0, i)); }
  const gwant = Array.from(prefixes).join("\n");
  if (Array.from(g.options).map(o => o.value).join("\n") !== gwant) {
    g.innerHTML = Array.from(prefixes).map(p => '<option value="' + esc(p) + '">' + esc(p === "none" ? t("group_none") : t("group_by", { g: p })) + "</option>").join("");
  }
  g.value = F.group || groupDefault();
}

let filterTimer = null;
$("search").addEventListener("input", () => { clearTimeout(filterTimer); filterTimer = setTimeout(readFilters, 150); });
for (const id of ["f-status", "f-channel", "f-tag", "group"]) $(id).addEventListener("change", readFilters);
window.addEventListener("hashchange", show);
let scrollQueued = false;
$("map-scroll").addEventListener("scroll", () => {
  if (route.view !== "overview" || scrollQueued) return;
  $("map-tip").hidden = true;
  scrollQueued = true;
  requestAnimationFrame(() => { scrollQueued = false; paintMap(true); });
}, { passive: true });
$("map").addEventListener("mousemove", onMapMove);
$("map").addEventListener("mouseleave", () => { $("map-tip").hidden = true; });
$("map").addEventListener("click", ev => { const s = hit(ev); if (s) go("server", s.id); });
$("tbl-scroll").addEventListener("scroll", () => requestAnimationFrame(paintTable), { passive: true });
$("tbl-head").addEventListener("click", ev => {
  const b = ev.target.closest("button[data-sort]");
  if (!b) return;
  if (F.sort === b.dataset.sort) F.dir = -F.dir; else { F.sort = b.dataset.sort; F.dir = b.dataset.sort === "sev" || b.dataset.sort === "server" || b.dataset.sort === "tags" ? 1 : -1; }
  syncUrl();
  changed(true);
});
$("tbl-body").addEventListener("click", ev => {
  if (ev.target.closest("a")) return;
  const row = ev.target.closest("[data-server]");
  if (row) go("server", row.dataset.server);
});
window.addEventListener("resize", () => changed(true));
$("fleet-range").addEventListener("change", drawFleet);
$("detail-range").addEventListener("change", () => { if (route.view === "server") loadServerCharts(route.id); });
$("filter-batch").addEventListener("click", openFilterBatch);
$("fb-state").addEventListener("change", previewFilterBatch);
$("fb-action").addEventListener("change", previewFilterBatch);
$("fb-cancel").addEventListener("click", () => $("fbatch").close());
$("fb-run").addEventListener("click", runFilterBatch);

P.onEvent("overview", applyDelta);
P.onEvent("resync", () => loadSnapshot());
P.onEvent("channel_state_changed", liveChannel);
P.onEvent("health_changed", liveHealth);
P.onLang(() => { fillTags(); headTable(); tableDrawn = ""; show(); drawFleet(); });
// The fallback: with the event stream down, the snapshot on the refresh timer.
P.onRefresh(() => { if (!P.live()) loadSnapshot(); });
// The fleet chart: its points every minute (a few KB).
setInterval(() => { if (route.view === "overview" && Date.now() - fleetLoaded > 55000) loadFleet(); }, 5000);
// Ages in the table move on without data.
setInterval(() => { if (route.view === "list") { tableDrawn = ""; paintTable(); } }, 5000);

headTable();
window.ipvtlOverview = Object.freeze({ model: M, matches, targets: channelTargets, version: () => M.v });
show();
loadSnapshot();
loadFleet();
})();
