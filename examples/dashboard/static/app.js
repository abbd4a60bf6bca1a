// The dashboard page's behaviour (index.html): the API client, live events,
// the server cards, actions and batches. Served as /app.js after i18n.js.
// The page's policy allows no inline script or style: handlers are set
// here, and markup built as strings carries classes and data attributes,
// never a style attribute.
"use strict";
(function () {
const i18n = window.ipvtlI18n;
const t = i18n.t;
function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
const $ = id => document.getElementById(id);

// ---- state ----
const servers = new Map();      // id -> server object from the API
const order = [];               // ids in configuration order
const cards = new Map();        // id -> {el, sig}
const spark = new Map();        // id -> [cpu_avg...]
const pending = new Map();      // "id|ch" -> {action} while an action of ours runs
const chanErr = new Map();      // "id|ch" -> {msg, ok}
const selected = new Set();     // "id|ch"
const live = new Map();         // "id|ch" -> {state, at}: channel states from events
const healingNow = new Map();   // "id|ch" -> action id: heals under way, from heal_started to heal_finished
let config = { auth_required: false, history_len: 120 };
let recon = null;               // GET /api/reconciler: healing's fleet-wide state (null: not offered)
const drifting = new Set();     // ids of servers with a drifting channel (their drift ages tick)
let etag = null, fetchedAt = 0, lastFetchOk = true;
let apiKey = localStorage.getItem("ipvtl.apiKey") || "";
const SPARK = 30;

function keyOf(id, ch) { return id + "|" + ch; }
function fmtAge(s) {
  if (s == null) return "";
  if (s < 90) return Math.round(s) + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  return Math.round(s / 3600) + "h";
}
// The banner says why the list cannot be fetched (cleared by the next good
// fetch) and why a header control failed (cleared after a while or by its
// next success): one does not wipe the other.
let bannerFetch = "", bannerOp = "", bannerOpTimer = null;
function drawBanner() {
  const b = $("banner"), msg = [bannerFetch, bannerOp].filter(Boolean).join(" · ");
  b.textContent = msg; b.classList.toggle("show", !!msg);
}
function showBanner(msg) { bannerFetch = msg || ""; drawBanner(); }
function showOpError(msg) {
  bannerOp = msg || ""; drawBanner();
  clearTimeout(bannerOpTimer);
  if (msg) bannerOpTimer = setTimeout(() => showOpError(""), 15000);
}

// ---- API ----
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && apiKey) headers["X-API-Key"] = apiKey;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (resp.status === 401) {
    askKey();
  }
  if (!resp.ok) {
    const err = new Error((data && data.detail) || ("HTTP " + resp.status));
    err.status = resp.status; err.data = data;
    throw err;
  }
  return data;
}

// The cards shown (index.html's #grid): none (the overview and the table
// draw from overview.js's model), one server (#/servers/ID), or the
// servers the filters leave (#/cards), at most CARDS_MAX of them, fetched
// with the list's own filters (status, tag, search) and narrowed here.
const CARDS_MAX = 200;
let cardScope = null, fleetSize = 0, etagUrl = "";
function cardsUrl() {
  if (!cardScope) return null;
  if (cardScope.one) return "/api/servers/" + encodeURIComponent(cardScope.one);
  const p = new URLSearchParams();
  const st = $("f-status").value;
  if (["online", "offline", "error", "unknown"].includes(st)) p.set("status", st);
  if ($("f-tag").value) p.set("tag", $("f-tag").value);
  // The list's search reads id, name, host and description, not tags:
  // only used when the fleet is too large to fetch whole.
  const q = $("search").value.trim();
  if (fleetSize > CARDS_MAX && q && !/\s/.test(q)) p.set("q", q);
  p.set("limit", String(CARDS_MAX));
  return "/api/servers?" + p.toString();
}
async function loadServers() {
  const url = cardsUrl();
  if (!url) {
    if (servers.size) { servers.clear(); order.length = 0; scheduleRender(); }
    return;
  }
  try {
    const headers = etag && etagUrl === url ? { "If-None-Match": etag } : {};
    const resp = await fetch(url, { headers });
    if (url !== cardsUrl()) return;
    if (resp.status === 304) { lastFetchOk = true; fetchedAt = Date.now(); showBanner(""); return; }
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    etag = resp.headers.get("ETag"); etagUrl = url;
    const body = await resp.json();
    const list = cardScope.one ? [body] : body.servers;
    fetchedAt = Date.now();
    lastFetchOk = true;
    showBanner("");
    const seen = new Set();
    order.length = 0;
    for (const s of list) {
      const id = s.config.id;
      seen.add(id);
      order.push(id);
      const old = servers.get(id);
      if (!old || old.state.last_poll_time !== s.state.last_poll_time) {
        const arr = spark.get(id) || [];
        if (s.state.cpu_avg != null && (!old || old.state.last_poll_time !== s.state.last_poll_time)) {
          arr.push(s.state.cpu_avg);
          while (arr.length > SPARK) arr.shift();
        }
        spark.set(id, arr);
      }
      s._at = fetchedAt;
      // A state change seen live just now is newer than a list built
      // before it: keep it until the list catches up.
      for (const ch of s.state.channels) {
        const l = live.get(keyOf(id, ch.id));
        if (l && fetchedAt - l.at < 1500) ch.state = l.state;
      }
      if (s.state.channels.some(ch => ch.drift)) drifting.add(id); else drifting.delete(id);
      servers.set(id, s);
    }
    for (const id of Array.from(servers.keys())) if (!seen.has(id)) { servers.delete(id); spark.delete(id); drifting.delete(id); }
    scheduleRender();
  } catch (e) {
    lastFetchOk = false;
    showBanner(t("fetch_failed", { e: e.message }));
  }
}

// Coalesces reloads triggered by events: `fn` runs at most once a second.
function throttled(fn) {
  let timer = null, queued = false;
  const go = () => {
    if (timer) { queued = true; return; }
    fn();
    timer = setTimeout(() => { timer = null; if (queued) { queued = false; go(); } }, 1000);
  };
  return go;
}
const requestLoad = throttled(loadServers);

// Healing's fleet-wide state for the header switch. A dashboard without
// the reconciler API (404) hides the switch; other failures keep the last.
async function loadReconciler() {
  try {
    applyReconciler(await api("GET", "/api/reconciler"));
  } catch (e) {
    if (e.status === 404) applyReconciler(null);
  }
}
const requestReconciler = throttled(loadReconciler);
function applyReconciler(r) {
  recon = r && typeof r.paused === "boolean" ? r : null;
  renderHealing();
}
function renderHealing() {
  const box = $("healing");
  box.hidden = !recon;
  if (!recon) return;
  // An operator's pause says more than the storm guard, which says more
  // than dry run.
  const mode = recon.paused ? "paused" : recon.storm ? "storm" : recon.dry_run ? "dry" : "on";
  const st = $("heal-state");
  st.className = mode;
  st.textContent = t("healing_" + mode);
  st.title = t("healing_tip");
  const count = $("heal-count");
  count.textContent = t("heal_counts", { troubled: recon.troubled, managed: recon.managed });
  count.title = t("heal_counts_tip", { troubled: recon.troubled, managed: recon.managed, inflight: recon.heals_in_flight });
  $("heal-toggle").textContent = t(recon.paused ? "heal_resume" : "heal_pause");
}
$("heal-toggle").onclick = async () => {
  if (!recon) return;
  const btn = $("heal-toggle");
  btn.disabled = true;
  try {
    applyReconciler(await api("POST", "/api/reconciler/" + (recon.paused ? "resume" : "pause")));
    showOpError("");
  } catch (e) {
    showOpError(t("heal_failed", { e: e.message }));
  } finally {
    btn.disabled = false;
  }
};

async function loadHistory() {
  if (!cardScope) return;
  try {
    if (cardScope.one) {
      const r = await api("GET", "/api/servers/" + encodeURIComponent(cardScope.one) + "/history");
      spark.set(cardScope.one, r.samples.map(x => x.cpu_avg).filter(v => v != null).slice(-SPARK));
      scheduleRender();
      return;
    }
    // Every server's points: only while the fleet is small.
    if (fleetSize > CARDS_MAX) return;
    const h = await api("GET", "/api/history?points=" + SPARK);
    for (const id in h.servers) {
      const arr = h.servers[id].filter(v => v != null);
      if (arr.length > (spark.get(id) || []).length) spark.set(id, arr.slice(-SPARK));
    }
    scheduleRender();
  } catch (_) { /* sparklines fill in as polls arrive */ }
}

// ---- live events ----
let es = null;
const extraEvents = [];
function onEvent(name, fn) {
  extraEvents.push([name, fn]);
  if (es) es.addEventListener(name, ev => { try { fn(JSON.parse(ev.data)); } catch (e) { console.error(e); } });
}
function connectEvents() {
  if (es) es.close();
  es = new EventSource("/api/events");
  for (const [name, fn] of extraEvents) es.addEventListener(name, ev => { try { fn(JSON.parse(ev.data)); } catch (e) { console.error(e); } });
  es.onopen = () => { setLive(true); requestLoad(); requestReconciler(); };
  es.onerror = () => setLive(false);
  const on = (name, fn) => es.addEventListener(name, ev => { try { fn(JSON.parse(ev.data)); } catch (e) { console.error(e); } });
  on("channel_state_changed", d => {
    const s = servers.get(d.server_id);
    const ch = s && s.state.channels.find(c => c.id === d.channel_id);
    live.set(keyOf(d.server_id, d.channel_id), { state: d.to, at: Date.now() });
    if (ch) { ch.state = d.to; if (d.to !== "running") { ch.status = ""; } touch(d.server_id); }
  });
  on("health_changed", d => {
    const s = servers.get(d.server_id);
    if (s) { s.state.status = d.to; if (d.error) s.state.error_message = d.error; touch(d.server_id); }
    requestLoad();
  });
  on("action_started", d => {
    const s = servers.get(d.server_id);
    const ch = s && s.state.channels.find(c => c.id === d.channel_id);
    if (ch) { ch.action = { action: d.action, phase: "" }; touch(d.server_id); }
  });
  on("action_finished", d => {
    const s = servers.get(d.server_id);
    const ch = s && s.state.channels.find(c => c.id === d.channel_id);
    if (ch) { ch.action = null; if (d.final_state) ch.state = d.final_state; touch(d.server_id); }
    if (!d.ok && d.batch_id != null) chanErr.set(keyOf(d.server_id, d.channel_id), { msg: d.summary, ok: false });
    requestLoad();
  });
  on("batch_progress", d => showBatch(d.batch_id, d.done, d.total, null));
  on("batch_finished", d => showBatch(d.batch_id, d.reports.length, d.reports.length, d));
  on("sweep_finished", () => requestLoad());
  on("refreshed", () => requestLoad());
  on("resync", () => { etag = null; requestLoad(); requestReconciler(); });
  // Drift and healing: the list carries each channel's drift, the
  // reconciler its counts; both are fetched again (coalesced).
  for (const name of ["drift_started", "drift_ended", "heal_planned", "heal_started", "heal_finished", "heal_degraded"]) {
    on(name, () => { requestLoad(); requestReconciler(); });
  }
  // A heal shows on its card from its start to its end as the events say,
  // not only when a fetched list happens to fall in between.
  on("heal_started", d => { healingNow.set(keyOf(d.server_id, d.channel_id), d.action_id); touch(d.server_id); });
  on("heal_finished", d => { healingNow.delete(keyOf(d.server_id, d.channel_id)); touch(d.server_id); });
  on("healing_paused", () => { requestLoad(); requestReconciler(); });
  on("healing_resumed", () => { requestLoad(); requestReconciler(); });
  on("reconciler", d => applyReconciler(d));
}
function setLive(on) {
  const l = $("live");
  l.className = on ? "on" : "off";
  l.textContent = t(on ? "live" : "offline_live");
}
function touch(id) { const c = cards.get(id); if (c) { c.sig = null; c.dirty = true; } scheduleRender(); }

// Cards off screen are not redrawn when their data changes; they are marked
// and redrawn when they scroll into view. Keeps 2 000 servers cheap.
const inView = new Set();
const viewport = new IntersectionObserver(entries => {
  let again = false;
  for (const e of entries) {
    const id = e.target.dataset.server;
    if (e.isIntersecting) { inView.add(id); const c = cards.get(id); if (c && c.dirty) again = true; } else inView.delete(id);
  }
  if (again) scheduleRender();
}, { rootMargin: "600px 0px" });

// ---- rendering ----
let renderQueued = false, lastRender = 0;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, 200 - (Date.now() - lastRender));
  setTimeout(() => requestAnimationFrame(() => { renderQueued = false; lastRender = Date.now(); render(); }), wait);
}

function matches(s) {
  const q = $("search").value.trim().toLowerCase();
  const fs = $("f-status").value, fc = $("f-channel").value;
  const st = s.state, c = s.config;
  if (q) {
    const hay = [c.id, c.name, c.host, c.description, (c.tags || []).join(" ")].join(" ").toLowerCase();
    if (!q.split(/\s+/).every(w => hay.includes(w))) return false;
  }
  if (fs === "stale" && !st.stale) return false;
  if (fs === "maintenance" && !st.maintenance) return false;
  if (fs && fs !== "stale" && fs !== "maintenance" && st.status !== fs) return false;
  const tag = $("f-tag").value;
  if (tag && !(c.tags || []).includes(tag)) return false;
  if (fc === "stalled") { if (!st.channels.some(ch => ch.stall != null)) return false; }
  else if (fc === "drifting") { if (!st.channels.some(ch => ch.drift)) return false; }
  else if (fc === "degraded") { if (!st.channels.some(ch => ch.drift && ch.drift.degraded)) return false; }
  else if (fc && !st.channels.some(ch => ch.state === fc)) return false;
  return true;
}

function sparkSvg(arr) {
  if (!arr || arr.length < 2) return '<svg viewBox="0 0 100 22" preserveAspectRatio="none"></svg>';
  const n = arr.length;
  const pts = arr.map((v, i) => (i * 100 / (n - 1)).toFixed(1) + "," + (21 - Math.max(0, Math.min(100, v)) * 0.2).toFixed(1)).join(" ");
  return '<svg viewBox="0 0 100 22" preserveAspectRatio="none"><polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" vector-effect="non-scaling-stroke" points="' + pts + '"/></svg>';
}

function channelHtml(s, ch) {
  const id = s.config.id, k = keyOf(id, ch.id);
  const ours = pending.get(k);
  const busy = ours || ch.action;
  const disabled = busy || s.state.maintenance ? " disabled" : "";
  const e = chanErr.get(k);
  let note = "";
  if (busy) note = '<div class="busy">' + esc(t("working", { action: t((ours && ours.action) || ch.action.action) })) + (ch.action && ch.action.phase ? " (" + esc(ch.action.phase) + ")" : "") + "</div>";
  else if (e) {
    const msg = e.key ? t(e.key, trVars(e.vars)) : e.msg;
    note = '<div class="' + (e.ok ? "busy" : "err") + '">' + esc(msg) + "</div>";
  }
  // Running but making no frames: the transcoder's input died. Derived from
  // the status the server reported, so it clears on the next good poll.
  const stalled = ch.stall != null;
  const d = ch.drift;
  const cls = (stalled ? " stalled" : "") + (d ? (d.degraded ? " degraded" : " drift") : "");
  return '<div class="channel' + cls + '" data-channel="' + ch.id + '" data-state="' + esc(ch.state) + '"' +
    (stalled ? ' title="' + esc(t("stalled_tip_" + ch.stall)) + '"' : "") + ">" +
    '<div class="top"><input type="checkbox" class="sel" aria-label="select"' + (selected.has(k) ? " checked" : "") + '>' +
    "<label>" + esc(t("channel", { n: ch.id })) + "</label>" +
    // A stalled channel's state is still "running": the badge says what
    // matters, the tooltip why.
    (stalled ? '<span class="badge stalled">' + esc(t("stalled")) + "</span>"
      : '<span class="badge ' + esc(ch.state) + '">' + esc(t(ch.state)) + "</span>") + "</div>" +
    wantHtml(s, ch) +
    '<div class="status">' + esc(ch.status) + "</div>" +
    '<div class="acts">' +
    '<button data-act="start"' + (ch.state === "running" ? " disabled" : disabled) + ">" + esc(t("start")) + "</button>" +
    '<button data-act="stop"' + (ch.state !== "running" ? " disabled" : disabled) + ">" + esc(t("stop")) + "</button>" +
    '<button data-act="restart"' + disabled + ">" + esc(t("restart")) + "</button>" +
    '<button data-menu="desired" aria-haspopup="menu" title="' + esc(t("desired_btn")) + '" aria-label="' + esc(t("desired_btn")) + '">⋯</button>' +
    "</div>" + note + "</div>";
}

// Message values that are themselves message keys (an action, a desired
// state): translated when drawn, so a language switch translates them too.
function trVars(vars) {
  const out = { ...vars };
  for (const k of ["action", "desired"]) if (out[k] != null) out[k] = t(out[k]);
  return out;
}

function driftAge(s, d) { return fmtAge((d.drift_ms + (Date.now() - s._at)) / 1000); }

// A managed channel's desired state next to the observed one, and while it
// drifts: for how long and why, whether healing gave up (with a retry), or
// a heal under way. Nothing at all for an unmanaged channel in step.
function wantHtml(s, ch) {
  const d = ch.drift;
  const healing = (d && d.healing_action_id != null) || healingNow.has(keyOf(s.config.id, ch.id));
  if (!ch.desired && !d && !healing) return "";
  let h = "";
  if (ch.desired) h += '<span class="badge want">' + esc(t("wants", { state: t(ch.desired) })) + "</span>";
  if (d) {
    const tip = t("drift_tip", { desired: t(d.desired), observed: t(d.observed),
      since: new Date(d.since_at * 1000).toLocaleTimeString(), n: d.attempts });
    h += '<span class="badge drift" title="' + esc(tip) + '"><span class="dage">' + esc(t("drift_for", { age: driftAge(s, d) })) + "</span>" +
      (d.stall ? " · " + esc(t("stall_" + d.stall)) : "") + "</span>";
    if (d.degraded) {
      h += '<span class="badge degraded" title="' + esc(t("degraded_tip", { n: d.attempts })) + '">' + esc(t("degraded")) + "</span>" +
        '<button data-heal="retry">' + esc(t("retry_heal")) + "</button>";
    }
  }
  if (healing) h += '<span class="badge healing">' + esc(t("healing_now")) + "</span>";
  return '<div class="want">' + h + "</div>";
}

function cardHtml(s) {
  const c = s.config, st = s.state;
  const cores = st.cpu_cores || [];
  const age = st.status_age_ms != null ? st.status_age_ms / 1000 + (Date.now() - s._at) / 1000 : null;
  let badges = '<span class="badge ' + esc(st.status) + '">' + esc(t(st.status)) + "</span>";
  if (st.maintenance) badges += ' <span class="badge maint">' + esc(t("maintenance")) + "</span>";
  if (st.stale) badges += ' <span class="badge stale">' + esc(t("stale")) + "</span>";
  const meta = [];
  if (st.last_poll_time == null) meta.push(esc(t("never")));
  if (age != null && (st.stale || st.status !== "online")) meta.push('<span class="age">' + esc(t("age", { s: fmtAge(age) })) + "</span>");
  if (st.latency_ms != null) meta.push(esc(t("latency", { ms: Math.round(st.latency_ms) })));
  if ((c.tags || []).length) meta.push(esc(c.tags.join(", ")));
  return '<div class="shead"><span class="name">' + esc(c.name) + '</span><span class="addr">' + esc(c.id) + " · " + esc(c.host) + ":" + esc(c.port) +
    '</span><span class="grow"></span>' + badges + "</div>" +
    '<div class="meta">' + meta.join(" · ") + "</div>" +
    (st.error_message ? '<div class="err">' + esc(st.error_message) + "</div>" : "") +
    (cores.length ? '<div class="cpu" title="' + esc(t("cpu")) + '">' + cores.map(v => '<i title="' + esc(v) + '%"><b class="' + (v >= 90 ? "hot" : "") + '" data-h="' + Math.max(0, Math.min(100, v)) + '"></b></i>').join("") + "</div>" : "") +
    '<div class="cpurow"><span>' + esc(t("cpu")) + " " + (st.cpu_avg != null ? esc(st.cpu_avg.toFixed(1)) + "%" : "–") + "</span>" + sparkSvg(spark.get(c.id)) + "</div>" +
    '<div class="channels">' + st.channels.map(ch => channelHtml(s, ch)).join("") + "</div>" +
    '<div class="sacts"><button data-sact="refresh">' + esc(t("refresh")) + '</button><button data-sact="maint">' + esc(t(st.maintenance ? "maint_off" : "maint_on")) + "</button></div>";
}

// Gives each CPU bar of a freshly drawn card its height (a data-h percentage)
// through the CSSOM, which the page's policy allows, unlike style attributes.
function sizeBars(el) {
  for (const b of el.querySelectorAll(".cpu b[data-h]")) b.style.height = b.dataset.h + "%";
}

function signature(s) {
  const k = s.state.channels.map(ch => keyOf(s.config.id, ch.id));
  return JSON.stringify([s.state, s.config.name, (spark.get(s.config.id) || []).length, spark.get(s.config.id), i18n.lang(),
    k.map(x => [selected.has(x), pending.has(x), chanErr.get(x)])]);
}

function render() {
  const grid = $("grid");
  let on = 0, offl = 0, err = 0, run = 0, idle = 0, cpuSum = 0, cpuN = 0, visible = 0;
  let prev = null;
  for (const id of order) {
    const s = servers.get(id);
    if (!s) continue;
    const st = s.state;
    if (st.status === "online") on++; else if (st.status === "offline") offl++; else if (st.status === "error") err++;
    for (const ch of st.channels) { if (ch.state === "running") run++; else if (ch.state === "idle") idle++; }
    if (st.cpu_avg != null && st.status === "online") { cpuSum += st.cpu_avg; cpuN++; }
    let c = cards.get(id);
    if (!c) {
      const el = document.createElement("article");
      el.className = "server";
      el.dataset.server = id;
      c = { el, sig: null, data: null, dirty: true, drawn: false };
      cards.set(id, c);
      viewport.observe(el);
    }
    // keep DOM order = configuration order, moving only what is misplaced
    const want = prev ? prev.nextSibling : grid.firstChild;
    if (want !== c.el) grid.insertBefore(c.el, want);
    prev = c.el;
    const show = matches(s);
    if (c.el.hidden === show) c.el.hidden = !show;
    if (show) visible++;
    if (c.data !== s) { c.data = s; c.dirty = true; }
    if (c.dirty && (!c.drawn || (show && inView.has(id)))) {
      const sig = signature(s);
      if (sig !== c.sig) {
        c.sig = sig;
        c.el.className = "server st-" + st.status + (st.stale ? " stale" : "") + (st.maintenance ? " maint" : "");
        c.el.innerHTML = cardHtml(s);
        sizeBars(c.el);
      }
      c.dirty = false;
      c.drawn = true;
    }
  }
  for (const [id, c] of cards) if (!servers.has(id)) { viewport.unobserve(c.el); c.el.remove(); cards.delete(id); inView.delete(id); }
  // The fleet's totals are overview.js's (the whole fleet, not the cards).
  void on; void offl; void err; void run; void idle; void cpuSum; void cpuN;
  if (cardScope) $("empty").style.display = !visible && fetchedAt ? "block" : "none";
  $("foot").textContent = fetchedAt ? t("updated", { t: new Date(fetchedAt).toLocaleTimeString() }) : "";
  updateBatchBar();
}

// ---- actions ----
function confirmDialog(text) {
  return new Promise(resolve => {
    const d = $("confirm");
    $("confirm-text").textContent = text;
    const done = v => { $("confirm-ok").onclick = $("confirm-cancel").onclick = null; d.close(); resolve(v); };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    d.oncancel = () => resolve(false);
    d.showModal();
  });
}

async function channelAction(id, ch, action) {
  const ok = await confirmDialog(t("confirm_action", { action: t(action), ch, server: id }));
  if (!ok) return;
  const k = keyOf(id, ch);
  pending.set(k, { action });
  chanErr.delete(k);
  touch(id);
  try {
    const r = await api("POST", "/api/servers/" + encodeURIComponent(id) + "/channels/" + encodeURIComponent(ch) + "/" + action);
    // Kept as a key and values, formatted when drawn: a language switch
    // translates it too.
    chanErr.set(k, { key: "ok_action", vars: { action, ms: r.duration_ms }, ok: true });
  } catch (e) {
    chanErr.set(k, { msg: e.message, ok: false });
  } finally {
    pending.delete(k);
    touch(id);
    requestLoad();
  }
}

async function serverAction(id, what) {
  const s = servers.get(id);
  try {
    if (what === "refresh") {
      const fresh = await api("POST", "/api/servers/" + encodeURIComponent(id) + "/refresh");
      fresh._at = Date.now();
      servers.set(id, fresh);
    } else {
      await api("POST", "/api/servers/" + encodeURIComponent(id) + "/maintenance", { enabled: !(s && s.state.maintenance) });
      if (s) s.state.maintenance = !s.state.maintenance;
    }
    touch(id);
  } catch (e) {
    if (s) { s.state.error_message = e.message; touch(id); }
  }
}

function channelPath(id, ch) { return "/api/servers/" + encodeURIComponent(id) + "/channels/" + encodeURIComponent(ch); }
function findChannel(id, ch) { const s = servers.get(id); return s && s.state.channels.find(c => c.id === ch); }

// `desired` is running, idle or unmanaged (a setting made here, which wins
// over the servers file), or "" to clear this channel's setting.
async function setDesired(id, ch, desired) {
  const ok = await confirmDialog(t("confirm_desired", { ch, server: id, desired: t(desired ? "desired_" + desired : "desired_clear") }));
  if (!ok) return;
  const k = keyOf(id, ch);
  chanErr.delete(k);
  touch(id);
  try {
    if (desired) {
      const r = await api("PUT", channelPath(id, ch) + "/desired", { desired });
      // A channel's own setting is the most specific one: it is in force.
      const c = findChannel(id, ch);
      if (c) { if (r.desired === "unmanaged") delete c.desired; else c.desired = r.desired; }
      chanErr.set(k, { key: "desired_set", vars: { desired: "desired_" + r.desired }, ok: true });
    } else {
      await api("DELETE", channelPath(id, ch) + "/desired");
      chanErr.set(k, { key: "desired_cleared", ok: true });
    }
  } catch (e) {
    chanErr.set(k, { msg: e.message, ok: false });
  } finally {
    touch(id);
    etag = null;
    requestLoad();
    requestReconciler();
  }
}

async function retryHealing(id, ch) {
  if (!(await confirmDialog(t("confirm_retry", { ch, server: id })))) return;
  const k = keyOf(id, ch);
  chanErr.delete(k);
  touch(id);
  try {
    const r = await api("DELETE", channelPath(id, ch) + "/degraded");
    chanErr.set(k, { key: r && r.cleared ? "retry_ok" : "retry_none", ok: true });
  } catch (e) {
    chanErr.set(k, { msg: e.message, ok: false });
  } finally {
    touch(id);
    etag = null;
    requestLoad();
  }
}

// The desired-state menu: one for the page rather than a control in each of
// thousands of channel cards, placed under the button that opened it
// (through the CSSOM: the policy allows no style attribute).
let menuFor = null, menuOpener = null;
function openMenu(btn, id, ch) {
  const m = $("desired-menu");
  const c = findChannel(id, ch);
  const cur = (c && c.desired) || "unmanaged";
  $("desired-title").textContent = t("desired_title", { ch, server: id });
  for (const b of m.querySelectorAll("button[data-desired]")) {
    if (b.dataset.desired) b.setAttribute("aria-checked", String(b.dataset.desired === cur));
    else b.title = t("desired_clear_tip");
  }
  m.hidden = false;
  const r = btn.getBoundingClientRect(), w = m.offsetWidth, h = m.offsetHeight;
  // In page coordinates (the menu scrolls with the page); above the
  // button when there is no room below it.
  m.style.left = window.scrollX + Math.max(4, Math.min(r.left, document.documentElement.clientWidth - w - 4)) + "px";
  m.style.top = window.scrollY + (r.bottom + 4 + h > window.innerHeight ? Math.max(4, r.top - 4 - h) : r.bottom + 4) + "px";
  menuFor = { id, ch };
  menuOpener = btn;
  m.querySelector("button").focus();
}
function closeMenu(refocus) {
  if (!menuFor) return;
  $("desired-menu").hidden = true;
  menuFor = null;
  if (refocus && menuOpener && menuOpener.isConnected) menuOpener.focus();
  menuOpener = null;
}
$("desired-menu").addEventListener("click", ev => {
  const b = ev.target.closest("button[data-desired]");
  if (!b || !menuFor) return;
  const { id, ch } = menuFor;
  closeMenu();
  setDesired(id, ch, b.dataset.desired);
});
$("desired-menu").addEventListener("keydown", ev => {
  const items = Array.from($("desired-menu").querySelectorAll("button"));
  const i = items.indexOf(document.activeElement);
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    items[(i + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
  }
});
document.addEventListener("keydown", ev => { if (ev.key === "Escape") closeMenu(true); });
document.addEventListener("click", ev => {
  if (menuFor && !ev.target.closest("#desired-menu, button[data-menu]")) closeMenu();
});
window.addEventListener("resize", () => closeMenu());

$("grid").addEventListener("click", ev => {
  const card = ev.target.closest(".server");
  if (!card) return;
  const id = card.dataset.server;
  const btn = ev.target.closest("button");
  if (btn && btn.dataset.act) {
    const ch = Number(btn.closest(".channel").dataset.channel);
    channelAction(id, ch, btn.dataset.act);
  } else if (btn && btn.dataset.menu === "desired") {
    const ch = Number(btn.closest(".channel").dataset.channel);
    if (menuFor && menuFor.id === id && menuFor.ch === ch) closeMenu(); else openMenu(btn, id, ch);
  } else if (btn && btn.dataset.heal === "retry") {
    retryHealing(id, Number(btn.closest(".channel").dataset.channel));
  } else if (btn && btn.dataset.sact) {
    serverAction(id, btn.dataset.sact);
  }
});
$("grid").addEventListener("change", ev => {
  if (!ev.target.classList.contains("sel")) return;
  const id = ev.target.closest(".server").dataset.server;
  const k = keyOf(id, Number(ev.target.closest(".channel").dataset.channel));
  if (ev.target.checked) selected.add(k); else selected.delete(k);
  touch(id);
});

// ---- batches ----
function updateBatchBar() {
  $("batchbar").classList.toggle("show", selected.size > 0 || !$("batch-progress").hidden);
  $("sel-count").textContent = t("selected", { n: selected.size });
  $("batch-restart").disabled = selected.size === 0;
}
let currentBatch = null;
function showBatch(id, done, total, report) {
  if (currentBatch !== id) return;
  const p = $("batch-progress");
  p.hidden = false; p.max = Math.max(1, total); p.value = done;
  $("batch-status").textContent = report ? t("batch_done", { id, ok: report.succeeded, failed: report.failed + report.skipped })
    : t("batch_running", { id, done, total });
  if (report) { currentBatch = null; requestLoad(); if (report.reports) batchReport(report.reports); }
  updateBatchBar();
}
// A batch submitted elsewhere (overview.js's batch by filter): its
// progress in the batch bar, its report channel by channel below it.
function followBatch(id, count) {
  currentBatch = id;
  batchLines = [];
  $("batch-report").hidden = true;
  showBatch(id, 0, count, null);
  const poll = setInterval(async () => {
    if (currentBatch !== id) { clearInterval(poll); return; }
    try {
      const b = await api("GET", "/api/batches/" + id);
      if (b.state === "finished") { showBatch(id, b.total, b.total, b.report); clearInterval(poll); }
    } catch (_) { /* keep waiting */ }
  }, 3000);
}
let batchLines = [];
function batchReport(reports) {
  const box = $("batch-report");
  const bad = reports.filter(r => !r.ok), good = reports.filter(r => r.ok);
  const line = r => '<li class="' + (r.ok ? "ok" : "bad") + '"><a href="#/servers/' + encodeURIComponent(r.server_id) + '">' +
    esc(r.server_id) + "</a> · " + esc(t("channel", { n: r.channel_id })) + " · " + esc(r.ok ? t("ok") : t("failed")) +
    (r.summary ? " — " + esc(r.summary) : "") + "</li>";
  box.innerHTML = "<ul>" + bad.concat(good).slice(0, 500).map(line).join("") + "</ul>" +
    (reports.length > 500 ? "<p>" + esc(t("more_reports", { n: reports.length - 500 })) + "</p>" : "");
  box.hidden = false;
}
$("batch-restart").onclick = async () => {
  const targets = Array.from(selected).map(k => { const i = k.lastIndexOf("|"); return { server_id: k.slice(0, i), channel_id: Number(k.slice(i + 1)) }; });
  if (!targets.length || !(await confirmDialog(t("confirm_batch", { n: targets.length })))) return;
  try {
    const r = await api("POST", "/api/batch", { action: "restart", targets, max_parallel: 4 });
    currentBatch = r.batch_id;
    const ids = new Set(targets.map(x => x.server_id));
    selected.clear();
    ids.forEach(touch);
    showBatch(r.batch_id, 0, r.count, null);
    // fallback if events were missed
    const poll = setInterval(async () => {
      if (currentBatch !== r.batch_id) { clearInterval(poll); return; }
      try {
        const b = await api("GET", "/api/batches/" + r.batch_id);
        if (b.state === "finished") { showBatch(r.batch_id, b.total, b.total, b.report); clearInterval(poll); }
      } catch (_) { /* keep waiting */ }
    }, 3000);
  } catch (e) {
    $("batch-status").textContent = e.message;
  }
};
$("sel-clear").onclick = () => { const ids = new Set(Array.from(selected).map(k => k.slice(0, k.lastIndexOf("|")))); selected.clear(); ids.forEach(touch); };
$("sel-running").onclick = () => {
  for (const id of order) {
    const s = servers.get(id);
    if (!s || !matches(s) || s.state.maintenance) continue;
    for (const ch of s.state.channels) if (ch.state === "running") selected.add(keyOf(id, ch.id));
    touch(id);
  }
};

// ---- controls ----
let refreshTimer = null;
const refreshHooks = [], langHooks = [];
function setRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  const ms = Number($("refresh").value);
  localStorage.setItem("ipvtl.refresh", String(ms));
  refreshTimer = ms ? setInterval(() => { loadServers(); loadReconciler(); for (const f of refreshHooks) f(); }, ms) : null;
}
$("refresh").value = localStorage.getItem("ipvtl.refresh") || "5000";
$("refresh").onchange = setRefresh;
let searchTimer = null;
const refilter = () => { clearTimeout(searchTimer); searchTimer = setTimeout(scheduleRender, 120); };
$("search").oninput = refilter;
$("f-status").onchange = scheduleRender;
$("f-channel").onchange = scheduleRender;
$("f-tag").onchange = scheduleRender;

function applyLang() {
  i18n.translatePage();
  $("lang").textContent = i18n.lang() === "zh" ? "English" : "中文";
  setLive(es && es.readyState === 1);
  renderHealing();
  closeMenu();
  for (const c of cards.values()) { c.dirty = true; c.drawn = false; }
  scheduleRender();
  for (const f of langHooks) f();
}
$("lang").onclick = () => { i18n.setLang(i18n.lang() === "zh" ? "en" : "zh"); applyLang(); };

function askKey() {
  const d = $("keydlg");
  if (d.open) return;
  $("key-input").value = apiKey;
  $("key-ok").onclick = () => { apiKey = $("key-input").value.trim(); localStorage.setItem("ipvtl.apiKey", apiKey); d.close(); };
  $("key-cancel").onclick = () => d.close();
  d.showModal();
}
$("keybtn").onclick = askKey;

// Ages of stale and offline cards move on without new data.
setInterval(() => {
  for (const id of order) {
    const s = servers.get(id);
    if (s && (s.state.stale || s.state.status !== "online") && s.state.status_age_ms != null) {
      const c = cards.get(id);
      const span = c && c.el.querySelector(".age");
      if (span) span.textContent = t("age", { s: fmtAge(s.state.status_age_ms / 1000 + (Date.now() - s._at) / 1000) });
    }
  }
  for (const id of drifting) {
    const s = servers.get(id), c = cards.get(id);
    if (!s || !c || !inView.has(id)) continue;
    for (const span of c.el.querySelectorAll(".dage")) {
      const ch = s.state.channels.find(x => x.id === Number(span.closest(".channel").dataset.channel));
      if (ch && ch.drift) span.textContent = t("drift_for", { age: driftAge(s, ch.drift) });
    }
  }
}, 1000);

// What overview.js shares with this file.
window.ipvtlPage = Object.freeze({
  esc, fmtAge, api, confirmDialog, showOpError, onEvent, followBatch,
  showFetchError: msg => showBanner(msg),
  onLang: f => langHooks.push(f),
  onRefresh: f => refreshHooks.push(f),
  live: () => !!es && es.readyState === 1,
  setFleetSize: n => { fleetSize = n; },
  setCardScope(scope) {
    const same = JSON.stringify(scope) === JSON.stringify(cardScope);
    cardScope = scope;
    if (!same) { etag = null; for (const c of cards.values()) c.dirty = true; loadServers(); loadHistory(); }
  },
  filtersChanged() { if (cardScope && !cardScope.one) requestLoad(); scheduleRender(); },
});

(async function start() {
  applyLang();
  connectEvents();
  try {
    config = await api("GET", "/api/config");
    $("keybtn").hidden = !config.auth_required;
  } catch (e) { showBanner(t("fetch_failed", { e: e.message })); }
  await loadServers();
  loadReconciler();
  loadHistory();
  setRefresh();
})();
})();
