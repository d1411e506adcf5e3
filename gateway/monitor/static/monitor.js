// The monitor page: keeps the call lists and the latency chart fresh, and follows one call's conversation live.
// Plain DOM and EventSource, no build step; every text goes in through textContent, never as HTML.
"use strict";
(function () {
  // location.origin carries no credentials: fetch() refuses URLs that do, and the browser re-sends Basic auth anyway.
  const api = (path) => location.origin + "/monitor/api" + path;
  const params = new URLSearchParams(location.search);
  const search = params.get("q") || "";
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  const clock = (at) => new Date(at * 1000).toLocaleTimeString();
  const duration = (s) => { s = Math.max(0, Math.floor(s)); const m = Math.floor(s / 60); return m + ":" + String(s % 60).padStart(2, "0"); };

  function link(call) {
    const a = el("a", null, call.caller || call.call_sid);
    a.href = "?call=" + encodeURIComponent(call.call_sid) + (search ? "&q=" + encodeURIComponent(search) : "");
    return a;
  }

  function fillTable(id, rows, columns, emptyText) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (!rows.length) { const tr = el("tr", "empty"); const td = el("td", null, emptyText); td.colSpan = columns; tr.append(td); body.append(tr); }
    rows.forEach((tr) => body.append(tr));
  }

  function renderCalls(calls) {
    const live = calls.filter((c) => c.status === "live"), recent = calls.filter((c) => c.status !== "live");
    document.getElementById("live-count").textContent = live.length;
    fillTable("live", live.map((c) => {
      const tr = el("tr"), name = el("td"); name.append(link(c));
      const d = el("td", "duration"); d.dataset.started = c.started_at;
      tr.append(name, d, el("td", null, c.turns)); return tr;
    }), 3, "no live calls");
    fillTable("recent", recent.map((c) => {
      const tr = el("tr"), name = el("td"); name.append(link(c));
      tr.append(name, el("td", "when", clock(c.started_at)), el("td", "outcome " + c.status,
        c.status + (c.status === "transferred" ? " → " + c.transferred_to : "")), el("td", null, c.turns)); return tr;
    }), 4, "no calls yet");
    tick();
  }

  function tick() {
    const now = Date.now() / 1000;
    document.querySelectorAll(".duration[data-started]").forEach((td) => { td.textContent = duration(now - Number(td.dataset.started)); });
    document.querySelectorAll(".when[data-at]").forEach((td) => { if (!td.textContent) td.textContent = clock(Number(td.dataset.at)); });
  }

  async function refreshCalls() {
    try {
      const r = await fetch(api("/calls" + (search ? "?q=" + encodeURIComponent(search) : "")), { credentials: "same-origin" });
      if (r.ok) renderCalls((await r.json()).calls);
    } catch (e) { /* the next round tries again */ }
  }

  function niceCeil(v) { const step = Math.pow(10, Math.floor(Math.log10(v))); return Math.ceil(v / step) * step; }

  function drawLatency(turns) {
    const canvas = document.getElementById("latency"), ctx = canvas.getContext("2d"), r = devicePixelRatio || 1;
    const w = canvas.width = canvas.clientWidth * r, h = canvas.height = 140 * r;
    const left = 52 * r, bottom = h - 16 * r, topY = 8 * r, now = Date.now() / 1000;
    const top = niceCeil(Math.max(50, ...turns.map((t) => t.ms)) * 1.2);
    const x = (at) => left + (w - left - 6 * r) * (1 - (now - at) / 3600), y = (ms) => bottom - (bottom - topY) * ms / top;
    ctx.clearRect(0, 0, w, h);
    ctx.font = (11 * r) + "px system-ui"; ctx.strokeStyle = "#e5e9ed"; ctx.fillStyle = "#7a8691";
    [0, 0.5, 1].forEach((f) => { const yy = y(f * top); ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w, yy); ctx.stroke();
      ctx.fillText(Math.round(f * top) + " ms", 4 * r, yy + 4 * r); });
    ctx.fillText("an hour ago", left, h - 3 * r); ctx.fillText("now", w - 26 * r, h - 3 * r);
    ctx.fillStyle = "#1f6feb";
    turns.forEach((t) => { ctx.beginPath(); ctx.arc(x(t.at), y(t.ms), 3.5 * r, 0, 2 * Math.PI); ctx.fill(); });
    const sorted = turns.map((t) => t.ms).sort((a, b) => a - b), q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
    document.getElementById("latency-legend").textContent = sorted.length
      ? sorted.length + (sorted.length === 1 ? " turn" : " turns") + " · median " + Math.round(q(0.5)) + " ms · p95 " + Math.round(q(0.95)) +
        " ms (the caller's last words → the answer on its way)"
      : "no turns in the last hour";
  }

  async function refreshLatency() {
    try { const r = await fetch(api("/latency"), { credentials: "same-origin" }); if (r.ok) drawLatency((await r.json()).turns); } catch (e) { /* next round */ }
  }

  // ---- one call's conversation -------------------------------------------------------------------------------
  const conversation = document.getElementById("conversation");
  const sid = conversation && conversation.dataset.call;
  const seen = new Set();

  function describe(e) {
    if (e.type === "action") {
      const what = { "hangup": "the bot hung up", "transfer": "transferring to " + (e.target || "?"), "transferred": "transfer answered",
        "transfer-failed": "transfer not answered", "barge-in": "the caller spoke over the bot", "no-input": "no input: the bot said goodbye",
        "call-limit": "call time limit reached", "reprompt": "no input: the bot asked again", "speech-outage": "speech recognition down: Twilio listens meanwhile",
        "speech-back": "speech recognition is back" }[e.action] || e.action;
      return what + (e.text && e.action !== "transfer-failed" ? ": " + e.text : "");
    }
    if (e.type === "end") return "call ended" + (e.status ? " (" + e.status + ")" : "");
    if (e.type === "caller" && e.input === "dtmf") return "keys " + (e.text || "");
    return e.text == null ? "(words not stored)" : e.text;
  }

  function addEvent(e, live) {
    if (seen.has(e.id) || e.type === "start") return;
    seen.add(e.id);
    const li = el("li", e.type + (e.error ? " failed" : ""), describe(e));
    li.dataset.type = e.type;
    let when = clock(e.at);
    if (e.type === "bot" && e.chatbot_ms != null) when += " · chatbot " + Math.round(e.chatbot_ms) + " ms + gateway " + Math.round(e.gateway_ms || 0) + " ms";
    if (e.error) when += " · chatbot failed: " + e.error;
    li.append(el("span", "when", when));
    document.getElementById("bubbles").append(li);
    if (live) li.scrollIntoView({ block: "nearest" });  // follow new words, but leave the page where it opened
    if (e.type === "end") refreshCall();
    if (e.type === "bot" && e.chatbot_ms != null) refreshLatency();
  }

  async function refreshCall() {
    try {
      const r = await fetch(api("/calls/" + encodeURIComponent(sid)), { credentials: "same-origin" });
      if (!r.ok) return;
      const call = await r.json();
      call.events.forEach((e) => addEvent(e, true));
      const status = document.getElementById("call-status");
      status.textContent = call.status + (call.status === "transferred" ? " → " + call.transferred_to : "");
      status.className = "outcome " + call.status;
      return call;
    } catch (e) { /* next round */ }
  }

  function follow() {
    const initial = JSON.parse(document.getElementById("call-data").textContent);
    initial.events.forEach((e) => addEvent(e, false));
    if (initial.status !== "live") return;
    const source = new EventSource(api("/calls/" + encodeURIComponent(sid) + "/events"));
    source.onmessage = (m) => { const e = JSON.parse(m.data); addEvent(e, true); if (e.type === "end") source.close(); };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {  // refused (too many watchers): poll instead
        const poll = setInterval(async () => { const call = await refreshCall(); if (call && call.status !== "live") clearInterval(poll); }, 2000);
      }
    };
  }

  if (sid && document.getElementById("call-data")) follow();
  tick(); setInterval(tick, 1000);
  refreshCalls(); setInterval(refreshCalls, 3000);
  refreshLatency(); setInterval(refreshLatency, 10000);
})();
