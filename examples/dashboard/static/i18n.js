// The dashboard page's strings in English and Chinese and the helpers that
// translate with them. Served as /i18n.js, loaded before app.js, which uses
// them through `window.ipvtlI18n`.
"use strict";
(function () {
const I18N = {
  en: {
    title: "IPVTL Dashboard", servers: "servers", online: "online", offline: "offline", error: "error", unknown: "unknown",
    running_channels: "running channels", idle_channels: "idle channels", avg_cpu: "avg CPU", auto_refresh: "Auto refresh",
    off: "off", api_key: "API key", search: "Search id, name, host, tag", all_servers: "all servers", stale: "stale",
    maintenance: "maintenance", any_channel: "any channel state", running: "running", idle: "idle", stopping: "stopping",
    select_running: "Select running (visible)", batch_restart: "Restart selected", clear: "Clear", no_match: "No server matches.",
    cancel: "Cancel", confirm: "Confirm", save: "Save", key_needed: "This dashboard needs an API key for actions.",
    live: "live", offline_live: "disconnected", start: "Start", stop: "Stop", restart: "Restart", refresh: "Refresh",
    maint_on: "Maintenance on", maint_off: "End maintenance", selected: "{n} channels selected",
    confirm_action: "{action} channel {ch} on {server}?", confirm_batch: "Restart {n} channels?",
    ok_action: "{action} done in {ms} ms", working: "{action}…", age: "status {s} old", latency: "{ms} ms",
    never: "not polled yet", cpu: "CPU", batch_done: "Batch {id}: {ok} ok, {failed} failed", batch_running: "Batch {id}: {done}/{total}",
    fetch_failed: "Cannot reach the dashboard API: {e}", channel: "Channel {n}", updated: "updated {t}",
    stalled: "stalled", stalled_tip_zero_fps: "running but making no frames (0 fps)",
    stalled_tip_uptime_frozen: "running but its uptime stopped advancing",
    drifting: "drifting", degraded: "degraded", wants: "wants {state}", drift_for: "drift {age}",
    stall_zero_fps: "0 fps", stall_uptime_frozen: "frozen",
    drift_tip: "wants {desired} but is {observed}, since {since}; {n} heal attempts",
    degraded_tip: "healing gave up after {n} attempts; the channel is left alone until you retry",
    retry_heal: "retry healing", healing_now: "healing…", desired_btn: "Desired state",
    desired_title: "Channel {ch} on {server} should be:", desired_running: "keep running", desired_idle: "keep idle",
    desired_unmanaged: "unmanaged (leave alone)", desired_clear: "clear channel setting",
    desired_clear_tip: "removes this channel's setting made here: the servers file or a server or tag setting applies",
    confirm_desired: "Channel {ch} on {server}: {desired}?", confirm_retry: "Let healing try channel {ch} on {server} again?",
    desired_set: "desired: {desired}", desired_cleared: "channel setting cleared", retry_ok: "healing will try again",
    retry_none: "was not degraded", healing_on: "healing: on", healing_paused: "healing: paused",
    healing_storm: "healing: paused by storm guard", healing_dry: "healing: dry run",
    heal_pause: "Pause healing", heal_resume: "Resume healing", heal_counts: "{troubled}/{managed} troubled",
    heal_counts_tip: "{troubled} of {managed} managed channels drifting or on a server not online; {inflight} heals under way",
    heal_failed: "Healing switch: {e}",
    alerts_btn: "Alerts {n}", alerts_title: "Active alerts", alerts_none: "No active alert.",
    alerts_failing: "delivery failing: {names}", alerts_load_failed: "Alerts: {e}", alert_silence: "Silence 1 h",
    alert_silenced_ok: "Silenced for an hour", alert_firing: "firing", alert_pending: "pending", alert_silenced: "silenced",
    healing_tip: "Channels are healed where a healing policy is on; elsewhere drift is only reported",

    view_overview: "Overview", view_list: "Servers", view_cards: "Cards", any_tag: "any tag", filter_batch: "Act on filtered…",
    range: "Range", range_recent: "recent polls", back: "Back to the overview", group_by: "by {g}", group_none: "no groups",
    no_group: "no {g} tag", n_servers: "{n} servers", map_label: "Map of {n} servers, problems first",
    map_hint: "Hover a tile for its server, click it for the server's channels. The Servers view lists the same servers as text.",
    cards_note: "The cards of the servers the filters leave (at most 200: narrow the filters for others).",
    col_server: "server", col_health: "health", col_tags: "tags", col_running: "running", col_latency: "latency",
    col_poll: "last poll", col_stale: "stale for", drift: "drifting", online_servers: "online servers",
    problem_channels: "stalled or drifting channels", chart_empty: "collecting points…",
    fb_action: "Action", fb_channels: "Channels", fb_any: "every channel", fb_run: "Run…",
    fb_scope: "Servers matching {filter}: {n}", fb_none: "No channel matches.", fb_planning: "Planning (dry run)…",
    fb_plan: "Dry run: {action} {n} channels on {servers} servers", confirm_fbatch: "{action} {n} channels?",
    ok: "ok", failed: "failed", never_ok: "no good poll", more_reports: "and {n} more",
  },
  zh: {
    title: "IPVTL 监控面板", servers: "服务器", online: "在线", offline: "离线", error: "错误", unknown: "未知",
    running_channels: "运行中通道", idle_channels: "空闲通道", avg_cpu: "平均 CPU", auto_refresh: "自动刷新",
    off: "关闭", api_key: "API 密钥", search: "搜索 ID、名称、主机、标签", all_servers: "全部服务器", stale: "过期",
    maintenance: "维护中", any_channel: "任意通道状态", running: "运行中", idle: "空闲", stopping: "停止中",
    select_running: "选择可见的运行通道", batch_restart: "重启所选", clear: "清除", no_match: "没有匹配的服务器。",
    cancel: "取消", confirm: "确认", save: "保存", key_needed: "执行操作需要 API 密钥。",
    live: "实时", offline_live: "未连接", start: "启动", stop: "停止", restart: "重启", refresh: "刷新",
    maint_on: "进入维护", maint_off: "结束维护", selected: "已选择 {n} 个通道",
    confirm_action: "确定要{action} {server} 的通道 {ch} 吗？", confirm_batch: "确定要重启 {n} 个通道吗？",
    ok_action: "{action}完成，用时 {ms} 毫秒", working: "{action}中…", age: "状态已过 {s}", latency: "{ms} 毫秒",
    never: "尚未轮询", cpu: "CPU", batch_done: "批次 {id}：{ok} 成功，{failed} 失败", batch_running: "批次 {id}：{done}/{total}",
    fetch_failed: "无法连接面板 API：{e}", channel: "通道 {n}", updated: "更新于 {t}",
    stalled: "停滞", stalled_tip_zero_fps: "运行中但没有输出帧（0 fps）",
    stalled_tip_uptime_frozen: "运行中但运行时间不再增加",
    drifting: "偏离期望", degraded: "自愈已放弃", wants: "期望：{state}", drift_for: "偏离 {age}",
    stall_zero_fps: "0 fps", stall_uptime_frozen: "时间停滞",
    drift_tip: "期望{desired}，实际{observed}，自 {since} 起；已尝试自愈 {n} 次",
    degraded_tip: "已尝试自愈 {n} 次仍未恢复，不再自动处理，直到您点击重试",
    retry_heal: "重试自愈", healing_now: "自愈中…", desired_btn: "期望状态",
    desired_title: "{server} 的通道 {ch} 应当：", desired_running: "保持运行", desired_idle: "保持空闲",
    desired_unmanaged: "不托管（不自动处理）", desired_clear: "清除通道设置",
    desired_clear_tip: "删除在此设置的通道期望状态：改用配置文件或服务器、标签的设置",
    confirm_desired: "{server} 的通道 {ch}：{desired}？", confirm_retry: "确定让 {server} 的通道 {ch} 重新尝试自愈吗？",
    desired_set: "期望：{desired}", desired_cleared: "已清除通道设置", retry_ok: "将重新尝试自愈",
    retry_none: "并未放弃自愈", healing_on: "自愈：开启", healing_paused: "自愈：已暂停",
    healing_storm: "自愈：风暴保护已暂停", healing_dry: "自愈：演练模式",
    heal_pause: "暂停自愈", heal_resume: "恢复自愈", heal_counts: "{troubled}/{managed} 异常",
    heal_counts_tip: "{managed} 个托管通道中有 {troubled} 个偏离期望或所在服务器不在线；{inflight} 个自愈进行中",
    heal_failed: "自愈开关：{e}",
    alerts_btn: "告警 {n}", alerts_title: "当前告警", alerts_none: "没有告警。",
    alerts_failing: "通知发送失败：{names}", alerts_load_failed: "告警：{e}", alert_silence: "静默 1 小时",
    alert_silenced_ok: "已静默一小时", alert_firing: "告警中", alert_pending: "待定", alert_silenced: "已静默",
    healing_tip: "仅对启用了自愈策略的通道自动修复；其他通道的偏离只做报告",

    view_overview: "总览", view_list: "服务器", view_cards: "卡片", any_tag: "任意标签", filter_batch: "按筛选批量操作…",
    range: "时间范围", range_recent: "最近轮询", back: "返回总览", group_by: "按 {g} 分组", group_none: "不分组",
    no_group: "无 {g} 标签", n_servers: "{n} 台服务器", map_label: "{n} 台服务器的地图，问题优先",
    map_hint: "鼠标悬停查看服务器，点击查看其通道。“服务器”视图以文字列出同样的服务器。",
    cards_note: "筛选后剩下的服务器卡片（最多 200 台：请缩小筛选范围查看其他服务器）。",
    col_server: "服务器", col_health: "状态", col_tags: "标签", col_running: "运行中", col_latency: "延迟",
    col_poll: "上次轮询", col_stale: "过期时长", drift: "偏离期望", online_servers: "在线服务器",
    problem_channels: "停滞或偏离的通道", chart_empty: "正在收集数据…",
    fb_action: "操作", fb_channels: "通道", fb_any: "全部通道", fb_run: "执行…",
    fb_scope: "匹配 {filter} 的服务器：{n} 台", fb_none: "没有匹配的通道。", fb_planning: "正在预演（dry run）…",
    fb_plan: "预演：{action} {servers} 台服务器上的 {n} 个通道", confirm_fbatch: "确定要{action} {n} 个通道吗？",
    ok: "成功", failed: "失败", never_ok: "从未成功轮询", more_reports: "还有 {n} 条",
  },
};
let lang = localStorage.getItem("ipvtl.lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en");
function t(key, vars) {
  let s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
  if (vars) for (const k in vars) s = s.split("{" + k + "}").join(String(vars[k]));
  return s;
}

// The static markup in the current language: <html lang>, the title, the
// text of [data-i18n] elements and the placeholder of [data-i18n-ph] ones.
function translatePage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-ph]").forEach(el => { el.placeholder = t(el.dataset.i18nPh); });
}

window.ipvtlI18n = Object.freeze({
  t,
  translatePage,
  lang: () => lang,
  setLang(l) { lang = l; localStorage.setItem("ipvtl.lang", l); },
});
})();
