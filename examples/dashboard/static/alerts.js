// The page's alerts: the firing count in the header (GET
// /api/overview/alerts, every 5 s: counts only, small at any fleet size)
// and, while open, a panel of the active alerts (GET /api/alerts), each
// with a button that
// silences it for an hour (POST /api/silences). Served as /alerts.js after
// app.js; markup carries classes only (the page's policy allows no inline
// style or script).
"use strict";
(function () {
const t = window.ipvtlI18n.t;
const $ = id => document.getElementById(id);
function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function ago(unix) {
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 90) return Math.round(s) + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  return Math.round(s / 3600) + "h";
}

let last = null, note = "";

function render() {
  const btn = $("alerts-btn"), panel = $("alerts-panel");
  if (!btn || !panel || !last) return;
  const firing = last.counts.firing, failing = last.receivers.filter(r => r.failing);
  btn.hidden = false;
  btn.textContent = t("alerts_btn", { n: firing });
  btn.classList.toggle("hot", firing > 0);
  btn.title = failing.length ? t("alerts_failing", { names: failing.map(r => r.name).join(", ") }) : "";
  if (panel.hidden || !last.active) return;
  const order = { firing: 0, pending: 1, silenced: 2 };
  const active = last.active.slice().sort((a, b) => (order[a.state] - order[b.state]) || (a.active_since_at - b.active_since_at));
  let h = '<div class="ahead"><b>' + esc(t("alerts_title")) + "</b>";
  if (failing.length) h += ' <span class="badge offline">' + esc(t("alerts_failing", { names: failing.map(r => r.name).join(", ") })) + "</span>";
  if (note) h += ' <span class="anote">' + esc(note) + "</span>";
  h += "</div>";
  if (!active.length) h += '<p class="anone">' + esc(t("alerts_none")) + "</p>";
  for (const a of active) {
    const where = [a.labels.server, a.labels.channel ? t("channel", { n: a.labels.channel }) : ""].filter(Boolean).join(" · ");
    h += '<div class="alert ' + esc(a.state) + '" data-fp="' + esc(a.fingerprint) + '">' +
      '<span class="badge ' + esc(a.state) + '">' + esc(t("alert_" + a.state)) + "</span> " +
      "<b>" + esc(a.labels.alertname) + "</b> " + esc(where) +
      ' <span class="asum">' + esc(a.annotations.summary || "") + "</span>" +
      ' <span class="aage">' + esc(ago(a.active_since_at)) + "</span>";
    if (a.state !== "silenced") h += ' <button class="btn" data-silence="' + esc(a.fingerprint) + '">' + esc(t("alert_silence")) + "</button>";
    h += "</div>";
  }
  panel.innerHTML = h;
}

async function load() {
  try {
    const full = !$("alerts-panel").hidden;
    const r = await fetch(full ? "/api/alerts" : "/api/overview/alerts", { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error("HTTP " + r.status);
    last = await r.json();
  } catch (e) {
    note = t("alerts_load_failed", { e: e.message });
  }
  render();
}

async function silence(fp) {
  const a = last && last.active && last.active.find(x => x.fingerprint === fp);
  if (!a) return;
  const matchers = ["alertname", "server", "channel"].filter(k => a.labels[k]).map(k => k + "=" + a.labels[k]);
  const headers = { "Content-Type": "application/json" };
  const key = localStorage.getItem("ipvtl.apiKey");
  if (key) headers["X-API-Key"] = key;
  try {
    const r = await fetch("/api/silences", {
      method: "POST", headers,
      body: JSON.stringify({ matchers, duration_s: 3600, comment: "silenced from the page" }),
    });
    const body = await r.json().catch(() => ({}));
    note = r.ok ? t("alert_silenced_ok") : t("alerts_load_failed", { e: body.detail || "HTTP " + r.status });
  } catch (e) {
    note = t("alerts_load_failed", { e: e.message });
  }
  load();
}

function start() {
  const btn = $("alerts-btn"), panel = $("alerts-panel");
  if (!btn || !panel) return;
  btn.onclick = () => { panel.hidden = !panel.hidden; note = ""; render(); if (!panel.hidden) load(); };
  panel.addEventListener("click", ev => {
    const b = ev.target.closest("button[data-silence]");
    if (b) silence(b.dataset.silence);
  });
  const lang = $("lang");
  if (lang) lang.addEventListener("click", () => setTimeout(render, 0));
  load();
  setInterval(load, 5000);
}
start();
})();
