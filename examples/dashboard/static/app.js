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
let config = { auth_required: false, history_len: 120 };
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
function showBanner(msg) { const b = $("banner"); b.textContent = msg || ""; b.classList.toggle("show", !!msg); }

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

async function loadServers() {
  try {
    const headers = etag ? { "If-None-Match": etag } : {};
    const resp = await fetch("/api/servers", { headers });
    if (resp.status === 304) { lastFetchOk = true; fetchedAt = Date.now(); showBanner(""); return; }
    if (!resp.ok) throw new Error("HTTP " + resp.status);
    etag = resp.headers.get("ETag");
    const list = await resp.json();
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
      servers.set(id, s);
    }
    for (const id of Array.from(servers.keys())) if (!seen.has(id)) { servers.delete(id); spark.delete(id); }
    scheduleRender();
  } catch (e) {
    lastFetchOk = false;
    showBanner(t("fetch_failed", { e: e.message }));
  }
}

let loadTimer = null, loadQueued = false;
function requestLoad() {            // coalesce reloads triggered by events: at most one per second
  if (loadTimer) { loadQueued = true; return; }
  loadServers();
  loadTimer = setTimeout(() => { loadTimer = null; if (loadQueued) { loadQueued = false; requestLoad(); } }, 1000);
}

async function loadHistory() {
  try {
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
function connectEvents() {
  if (es) es.close();
  es = new EventSource("/api/events");
  es.onopen = () => { setLive(true); requestLoad(); };
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
  on("resync", () => { etag = null; requestLoad(); });
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
  if (fc && !st.channels.some(ch => ch.state === fc)) return false;
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
    const msg = e.key ? t(e.key, { ...e.vars, action: t(e.vars.action) }) : e.msg;
    note = '<div class="' + (e.ok ? "busy" : "err") + '">' + esc(msg) + "</div>";
  }
  // Running but making no frames: the transcoder's input died. Derived from
  // the status the server reported, so it clears on the next good poll.
  const stalled = ch.stall != null;
  return '<div class="channel' + (stalled ? " stalled" : "") + '" data-channel="' + ch.id + '" data-state="' + esc(ch.state) + '"' +
    (stalled ? ' title="' + esc(t("stalled_tip_" + ch.stall)) + '"' : "") + ">" +
    '<div class="top"><input type="checkbox" class="sel" aria-label="select"' + (selected.has(k) ? " checked" : "") + '>' +
    "<label>" + esc(t("channel", { n: ch.id })) + "</label>" +
    // A stalled channel's state is still "running": the badge says what
    // matters, the tooltip why.
    (stalled ? '<span class="badge stalled">' + esc(t("stalled")) + "</span>"
      : '<span class="badge ' + esc(ch.state) + '">' + esc(t(ch.state)) + "</span>") + "</div>" +
    '<div class="status">' + esc(ch.status) + "</div>" +
    '<div class="acts">' +
    '<button data-act="start"' + (ch.state === "running" ? " disabled" : disabled) + ">" + esc(t("start")) + "</button>" +
    '<button data-act="stop"' + (ch.state !== "running" ? " disabled" : disabled) + ">" + esc(t("stop")) + "</button>" +
    '<button data-act="restart"' + disabled + ">" + esc(t("restart")) + "</button></div>" + note + "</div>";
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
  $("t-servers").textContent = order.length;
  $("t-online").textContent = on; $("t-offline").textContent = offl; $("t-error").textContent = err;
  $("t-running").textContent = run; $("t-idle").textContent = idle;
  $("t-cpu").textContent = cpuN ? (cpuSum / cpuN).toFixed(1) + "%" : "–";
  $("empty").style.display = order.length && !visible ? "block" : "none";
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

$("grid").addEventListener("click", ev => {
  const card = ev.target.closest(".server");
  if (!card) return;
  const id = card.dataset.server;
  const btn = ev.target.closest("button");
  if (btn && btn.dataset.act) {
    const ch = Number(btn.closest(".channel").dataset.channel);
    channelAction(id, ch, btn.dataset.act);
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
  if (report) { currentBatch = null; requestLoad(); }
  updateBatchBar();
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
function setRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  const ms = Number($("refresh").value);
  localStorage.setItem("ipvtl.refresh", String(ms));
  refreshTimer = ms ? setInterval(loadServers, ms) : null;
}
$("refresh").value = localStorage.getItem("ipvtl.refresh") || "5000";
$("refresh").onchange = setRefresh;
let searchTimer = null;
const refilter = () => { clearTimeout(searchTimer); searchTimer = setTimeout(scheduleRender, 120); };
$("search").oninput = refilter;
$("f-status").onchange = scheduleRender;
$("f-channel").onchange = scheduleRender;

function applyLang() {
  i18n.translatePage();
  $("lang").textContent = i18n.lang() === "zh" ? "English" : "中文";
  setLive(es && es.readyState === 1);
  for (const c of cards.values()) { c.dirty = true; c.drawn = false; }
  scheduleRender();
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
}, 1000);

(async function start() {
  applyLang();
  try {
    config = await api("GET", "/api/config");
    $("keybtn").hidden = !config.auth_required;
  } catch (e) { showBanner(t("fetch_failed", { e: e.message })); }
  await loadServers();
  loadHistory();
  connectEvents();
  setRefresh();
})();
})();
