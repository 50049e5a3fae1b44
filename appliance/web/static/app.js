// hybrid-agent web UI: chat, push-to-talk and hands-free talk, cluster, world. Plain ES module, no build step.
"use strict";

const CLUSTER_POLL_MS = 2000;
const WORLD_RETRY_MS = 3000;
const VOICE_RATE = 16000;           // what /api/voice expects: 16 kHz 16-bit mono PCM
const STORAGE_KEY = "hybrid-agent.chat";
const MAX_KEPT_MESSAGES = 200;

const $ = (sel) => document.querySelector(sel);
const state = { features: {}, blocked: {}, conversationId: null, messages: [], world: new Map() };

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function fmtDuration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function yesNo(v) {
  if (v === undefined || v === null) return el("span", {}, "?");
  return el("span", { class: v ? "yes" : "no" }, v ? "yes" : "no");
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message || `${path}: HTTP ${r.status}`);
  return body;
}

function errorText(body, status) {
  return body?.error?.message || `HTTP ${status}`;
}

// Parses a text/event-stream body from fetch (EventSource cannot POST).
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const raw = data.join("\n");
      let parsed;
      try { parsed = JSON.parse(raw); } catch { parsed = raw; }
      yield { event, data: parsed };
    }
  }
}

// ---------------------------------------------------------------- tabs

function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", "#" + tab.id.slice(4));
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) { e.preventDefault(); select(tabs[(i + step + tabs.length) % tabs.length], true); }
      if (e.key === "Home") { e.preventDefault(); select(tabs[0], true); }
      if (e.key === "End") { e.preventDefault(); select(tabs[tabs.length - 1], true); }
    });
  });
  const fromHash = () => {
    const tab = document.getElementById("tab-" + location.hash.slice(1));
    if (tab && tab.getAttribute("role") === "tab") select(tab, false);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

// ---------------------------------------------------------------- cluster

function renderNode(s) {
  $("#node-badge").textContent =
    `${s.name} · ${s.tier} · ${s.ready ? "ready" : s.phase || "starting"}`;
  const info = $("#node-info");
  const models = [];
  for (const c of Object.values(s.components || {})) {
    if (c.model) models.push(String(c.model));
    if (Array.isArray(c.models)) models.push(...c.models.map(String));
  }
  const facts = [
    ["Name", s.name], ["Id", s.id], ["Tier", s.tier], ["Roles", (s.roles || []).join(", ") || "none"],
    ["Models", models.join(", ") || "none"], ["Load", `${s.inflight} request(s) in flight`],
    ["Uptime", fmtDuration(s.uptime_s || 0)], ["Version", s.version], ["Status", s.status || ""],
  ];
  info.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
  const rows = Object.entries(s.components || {}).map(([name, c]) => {
    const { healthy, ...rest } = c;
    const details = Object.entries(rest).map(([k, v]) =>
      `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
    return el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, yesNo(healthy)), el("td", {}, details));
  });
  $("#components tbody").replaceChildren(...rows);
}

function renderPeers(peers) {
  const rows = peers.map((p) => el("tr", { "data-peer": p.name || p.id || "", title: p.problem || "" },
    el("th", { scope: "row" }, p.url && /^https?:\/\//.test(p.url)
      ? el("a", { href: p.url + "/", rel: "noopener" }, p.name || p.id || "?")
      : p.name || p.id || "?"),
    el("td", {}, p.tier || "?"),
    el("td", {}, (p.roles || []).join(", ")),
    el("td", {}, (p.models || []).join(", ")),
    el("td", {}, yesNo(p.trusted)),
    el("td", {}, yesNo(p.healthy)),
    el("td", {}, typeof p.rtt_s === "number" ? `${(p.rtt_s * 1000).toFixed(1)} ms` : "—"),
    el("td", {}, p.load === undefined || p.load === null ? "—" :
      (typeof p.load === "object" ? JSON.stringify(p.load) : String(p.load)))));
  $("#peers tbody").replaceChildren(...rows);
  $("#peers-empty").hidden = rows.length > 0;
}

async function pollCluster() {
  if (document.hidden) { setTimeout(pollCluster, CLUSTER_POLL_MS); return; }
  try {
    const s = await getJSON("/api/status");
    renderNode(s);
    let peers = s.peers || [];
    if (state.features.peers) {
      const body = await getJSON("/api/peers");
      peers = Array.isArray(body) ? body : body.peers || [];
    }
    renderPeers(peers);
    $("#cluster-updated").textContent = new Date().toLocaleTimeString();
  } catch (err) {
    $("#node-badge").textContent = `cannot reach the node: ${err.message}`;
  }
  setTimeout(pollCluster, CLUSTER_POLL_MS);
}

// ---------------------------------------------------------------- chat

function saveChat() {
  const kept = state.messages.slice(-MAX_KEPT_MESSAGES);
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ id: state.conversationId, messages: kept }));
}

function addMessage(role, text) {
  const li = el("li", { class: role });
  const answer = el("div", { class: "answer" }, text);
  li.append(answer);
  $("#chat-log").append(li);
  li.scrollIntoView({ block: "end" });
  return { li, answer };
}

function addEvent(li, kind, text) {
  const node = el("div", { class: `event ${kind}`, "data-kind": kind }, text);
  li.insertBefore(node, li.lastChild);
  return node;
}

function restoreChat() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (!saved) return;
    state.conversationId = saved.id;
    state.messages = saved.messages || [];
    for (const m of state.messages) addMessage(m.role, m.text);
  } catch { sessionStorage.removeItem(STORAGE_KEY); }
}

function describeTool(kind, d) {
  // tool_call: {id, name, arguments, where}; tool_result: {id, name, ok, result | error}
  if (kind === "tool_call") {
    const args = typeof d.arguments === "string" ? d.arguments : JSON.stringify(d.arguments ?? {});
    return `→ ${d.name}(${args})${d.where ? ` on ${d.where}` : ""}`;
  }
  const out = d.ok === false ? `failed: ${d.error}` : d.result;
  return `← ${d.name}: ${typeof out === "string" ? out : JSON.stringify(out)}`;
}

async function sendChat(text) {
  const agent = $("#chat-agent").value;
  addMessage("user", text);
  state.messages.push({ role: "user", text });
  const { li, answer } = addMessage("assistant", "");
  li.setAttribute("aria-busy", "true");
  const waiting = addEvent(li, "waiting", "thinking…");
  const body = { text };
  if (state.conversationId) body.conversation_id = state.conversationId;
  if (agent) body.agent = agent;
  let streamed = "";
  performance.mark("chat-send");
  try {
    const r = await fetch("/api/chat", {
      method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    if (!r.ok) throw new Error(errorText(await r.json().catch(() => ({})), r.status));
    for await (const { event, data } of sseEvents(r)) {
      waiting.remove();
      const d = typeof data === "object" && data !== null ? data : { text: data };
      if (d.conversation_id) state.conversationId = d.conversation_id;
      if (event === "token") {
        streamed += d.text ?? "";
        answer.textContent = streamed;
        li.dataset.tokens = String(Number(li.dataset.tokens || 0) + 1);
        if (li.dataset.tokens === "1") performance.mark("chat-first-token");
      } else if (event === "thought") {
        addEvent(li, "thought", `thinking: ${d.text ?? ""}`);
      } else if (event === "tool_call" || event === "tool_result") {
        addEvent(li, event, describeTool(event, d));
      } else if (event === "final") {
        if (typeof d.text === "string" && d.text) { streamed = d.text; answer.textContent = d.text; }
        li.dataset.final = "true";
        performance.mark("chat-final");
        if (d.served_by) li.title = `answered by ${d.served_by}`;
        if (d.intent) addEvent(li, "intent", `intent: ${d.intent}`);
      } else if (event === "error") {
        addEvent(li, "error", d.message || "error");
        li.dataset.error = d.code || "error";
      }
    }
  } catch (err) {
    addEvent(li, "error", `failed: ${err.message}`);
  } finally {
    waiting.remove();
    li.removeAttribute("aria-busy");
    state.messages.push({ role: "assistant", text: streamed });
    saveChat();
  }
}

async function loadAgents() {
  if (!state.features.agents) return;
  try {
    const body = await getJSON("/api/agents");
    const list = Array.isArray(body) ? body : body.agents || [];
    const select = $("#chat-agent");
    for (const a of list) {
      const name = typeof a === "string" ? a : a.name;
      if (!name || name === "default") continue;
      select.append(el("option", { value: name, title: a.description || "" }, name));
    }
  } catch { /* the default agent still works */ }
}

function setupChat() {
  const form = $("#chat-form"), input = $("#chat-input"), send = $("#chat-send");
  if (!state.features.chat) {
    $("#chat-unavailable").hidden = false;
    for (const c of form.elements) c.disabled = true;
    return;
  }
  restoreChat();
  loadAgents();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send.disabled = true;
    try { await sendChat(text); } finally { send.disabled = false; input.focus(); }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  $("#chat-new").addEventListener("click", () => {
    state.conversationId = null;
    state.messages = [];
    sessionStorage.removeItem(STORAGE_KEY);
    $("#chat-log").replaceChildren();
    input.focus();
  });
}

// ---------------------------------------------------------------- world

function worldItems(body) {
  // GET /api/world -> {"version", "entries": [{"key", "value", "version"}]}
  return Array.isArray(body.entries) ? body.entries : [];
}

function renderWorld(flashKey) {
  const rows = [...state.world.values()].sort((a, b) => a.key.localeCompare(b.key)).map((it) => {
    const tr = el("tr", { "data-key": it.key, "data-version": String(it.version ?? "") },
      el("th", { scope: "row" }, el("code", {}, it.key)),
      el("td", {}, el("code", { class: "value" }, JSON.stringify(it.value))),
      el("td", {}, String(it.version ?? "")),
      el("td", {},
        el("button", { type: "button", class: "secondary", onclick: () => editKey(it.key),
                       ariaLabel: `Edit ${it.key}` }, "Edit"),
        " ",
        el("button", { type: "button", class: "secondary", onclick: () => deleteKey(it.key),
                       ariaLabel: `Delete ${it.key}` }, "Delete")));
    if (it.key === flashKey) tr.classList.add("flash");
    return tr;
  });
  $("#world tbody").replaceChildren(...rows);
  $("#world-empty").hidden = rows.length > 0;
}

// The form remembers the version its value was taken from: the feed may move the table
// on while the user edits, and the save must then be refused, not overwrite that change.
function editingFrom(key, version) {
  const form = $("#world-form");
  if (key === null) { delete form.dataset.key; delete form.dataset.version; return; }
  form.dataset.key = key;
  form.dataset.version = String(version);
}

function editKey(key) {
  const it = state.world.get(key);
  if (!it) return;
  editingFrom(key, it.version);
  $("#world-key").value = key;
  $("#world-value").value = JSON.stringify(it.value, null, 2);
  $("#world-value").focus();
}

async function deleteKey(key) {
  const it = state.world.get(key);
  const headers = {};
  if (it) headers["If-Match"] = String(it.version);
  const r = await fetch(`/api/world/${encodeURIComponent(key)}`, { method: "DELETE", headers });
  if (!r.ok) { $("#world-error").textContent = errorText(await r.json().catch(() => ({})), r.status); return; }
  $("#world-error").textContent = "";
  state.world.delete(key);
  renderWorld();
}

function applyWorldEvent(d) {
  if (!d || !d.key) return;
  if (d.op === "delete") state.world.delete(d.key);
  else state.world.set(d.key, { key: d.key, value: d.value, version: d.version });
  renderWorld(d.key);
}

async function loadWorld() {
  const body = await getJSON("/api/world");
  state.world = new Map(worldItems(body).map((it) => [it.key, it]));
  renderWorld();
}

function followWorld() {
  const live = $("#world-live");
  const src = new EventSource("/api/world/events");
  const handle = (e) => { try { applyWorldEvent(JSON.parse(e.data)); } catch { /* not ours */ } };
  src.onopen = () => { live.textContent = "connected"; loadWorld().catch(() => {}); };
  src.onmessage = handle;
  src.addEventListener("change", handle);
  src.onerror = () => {
    live.textContent = "reconnecting…";
    if (src.readyState === EventSource.CLOSED) setTimeout(followWorld, WORLD_RETRY_MS);
  };
}

function setupWorld() {
  const form = $("#world-form");
  if (!state.features.world) {
    if (state.blocked.world) $("#world-unavailable").textContent = `The world model: ${state.blocked.world}.`;
    $("#world-unavailable").hidden = false;
    for (const c of form.elements) c.disabled = true;
    return;
  }
  loadWorld().catch((err) => { $("#world-error").textContent = err.message; });
  if (state.features.world_events) followWorld();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("#world-key").value.trim(), err = $("#world-error");
    let value;
    try { value = JSON.parse($("#world-value").value); } catch (x) {
      err.textContent = `The value is not valid JSON: ${x.message}`;
      $("#world-value").focus();
      return;
    }
    // Compare-and-set against the version the edit started from (else the one this page
    // shows; 0: only if still absent), so an edit never silently overwrites a change made
    // meanwhile in another tab or box.
    const known = state.world.get(key);
    const version = form.dataset.key === key ? form.dataset.version : String(known ? known.version : 0);
    const headers = { "Content-Type": "application/json", "If-Match": version };
    const r = await fetch(`/api/world/${encodeURIComponent(key)}`,
      { method: "PUT", headers, body: JSON.stringify(value) });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const now = body?.error?.param;
      // The message shows the current version: saving again means overwriting that one.
      if (r.status === 412 && now !== undefined) editingFrom(key, now);
      err.textContent = r.status === 412
        ? `“${key}” was changed meanwhile (now version ${now ?? "?"}); check the new value and save again.`
        : errorText(body, r.status);
      loadWorld().catch(() => {});
      return;
    }
    err.textContent = "";
    applyWorldEvent({ op: "set", ...body });
    form.reset();
  });
  form.addEventListener("reset", () => editingFrom(null));
  // A key typed by hand is a new edit: it starts from whatever version the page shows.
  $("#world-key").addEventListener("input", () => editingFrom(null));
}

// ---------------------------------------------------------------- talk

const WORKLET = "/static/pcm-worklet.js";

const voice = {
  ctx: null, stream: null, node: null, ws: null, workletReady: false, opening: false, heardReply: false, talking: false, playAt: 0,
  replyRate: 22050, played: 0, sent: 0, reply: "", sources: new Set(), handsFree: false, wakePhrase: "the wake word",
};

function talkStatus(text) { $("#talk-status").textContent = text; }

function audioContext() {
  if (!voice.ctx) voice.ctx = new AudioContext();
  return voice.ctx;
}

// The microphone is open only while the button is held (or hands-free is on), so the browser's recording
// indicator means what it says.
async function openMic() {
  if (voice.node) return;
  const ctx = audioContext();
  if (!voice.workletReady) {
    await ctx.audioWorklet.addModule(WORKLET);
    voice.workletReady = true;
  }
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  const node = new AudioWorkletNode(ctx, "pcm16k", { processorOptions: { targetRate: VOICE_RATE } });
  node.port.onmessage = (e) => {
    if ((voice.talking || voice.handsFree) && voice.ws && voice.ws.readyState === WebSocket.OPEN) {
      voice.ws.send(e.data);
      voice.sent += e.data.byteLength / 2;
      $("#view-talk").dataset.sentMs = String(Math.round(voice.sent * 1000 / VOICE_RATE));
    }
  };
  ctx.createMediaStreamSource(stream).connect(node);
  voice.stream = stream;
  voice.node = node;
  $("#view-talk").dataset.mic = "open";
}

function closeMic() {
  if (voice.stream) for (const track of voice.stream.getTracks()) track.stop();
  if (voice.node) { voice.node.port.onmessage = null; voice.node.disconnect(); }
  voice.stream = null;
  voice.node = null;
  $("#view-talk").dataset.mic = "closed";
}

function openVoiceSocket() {
  return new Promise((resolve, reject) => {
    if (voice.ws && voice.ws.readyState === WebSocket.OPEN) { resolve(voice.ws); return; }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const query = state.conversationId ? `?conversation_id=${encodeURIComponent(state.conversationId)}` : "";
    const ws = new WebSocket(`${proto}//${location.host}/api/voice${query}`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { voice.ws = ws; resolve(ws); };
    ws.onerror = () => reject(new Error("cannot open the voice connection"));
    ws.onclose = () => { if (voice.ws === ws) voice.ws = null; if (voice.handsFree) setHandsFree(false, "The voice connection closed."); };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") onVoiceEvent(JSON.parse(e.data));
      else playPcm(e.data);
    };
  });
}

const TALK_STATES = { listening: "Listening…", transcribing: "Transcribing…",
  thinking: "Thinking…", speaking: "Speaking…" };

// Events of /api/voice (docs/api.md); each binary message is PCM announced by an "audio" event.
function onVoiceEvent(ev) {
  const talk = $("#view-talk");
  if (ev.conversation_id) { state.conversationId = ev.conversation_id; saveChat(); }
  switch (ev.type) {
    case "state":
      if (ev.sample_rate) voice.replyRate = ev.sample_rate;
      if (ev.wake_words && ev.wake_words.length) voice.wakePhrase = wakePhrase(ev.wake_words[0]);
      if (ev.state === "waiting") talkStatus(`Say “${voice.wakePhrase}”…`);
      else if (!voice.talking || ev.state !== "listening") talkStatus(TALK_STATES[ev.state] || ev.state);
      break;
    case "wake":  // hands-free: the node heard its wake word; a question may follow
      stopPlayback();
      chime();
      talk.dataset.wakes = String(Number(talk.dataset.wakes || 0) + 1);
      break;
    case "transcript":
      if (ev.final === false) {  // the utterance so far, while the user still speaks
        $("#talk-transcript").textContent = `${ev.text}…`;
        break;
      }
      $("#talk-transcript").textContent = ev.text || "(nothing understood)";
      performance.mark("talk-transcript");
      talk.dataset.transcript = ev.text || "";
      break;
    case "reply_text":
      voice.reply += ev.text || "";
      $("#talk-reply").textContent = voice.reply;
      break;
    case "reply":
      if (ev.text) { voice.reply = ev.text; $("#talk-reply").textContent = ev.text + (ev.cut_off ? " (cut off)" : ""); }
      if (ev.timings && typeof ev.timings.first_audio_s === "number") {
        talk.dataset.firstAudioS = String(ev.timings.first_audio_s);
        $("#talk-timing").textContent =
          `End of speech to first reply audio: ${ev.timings.first_audio_s.toFixed(2)} s.`;
      }
      break;
    case "audio":
      voice.replyRate = ev.sample_rate || voice.replyRate;
      talkStatus(TALK_STATES.speaking);
      break;
    case "audio_stop":
      stopPlayback();
      break;
    case "barge_in":  // the user spoke over the reply: it stops now
      stopPlayback();
      talk.dataset.bargeIns = String(Number(talk.dataset.bargeIns || 0) + 1);
      break;
    case "done":
      if (!voice.talking && !voice.handsFree) talkStatus("Idle.");
      talk.dataset.turns = String(Number(talk.dataset.turns || 0) + 1);
      break;
    case "error":
      if (ev.code === "no_wake_words") setHandsFree(false);
      talkStatus(`Error: ${ev.message || "voice failed"}`);
      talk.dataset.error = ev.code || "error";
      break;
    default:
      break;  // speech_start, speech_end: nothing to show
  }
}

// How many reply chunks are playing or queued, for the page's state (data-playing).
function showPlaying() { $("#view-talk").dataset.playing = String(voice.sources.size); }

function stopPlayback() {
  for (const node of voice.sources) { try { node.stop(); } catch { /* already ended */ } }
  voice.sources.clear();
  voice.playAt = 0;
  showPlaying();
}

function playPcm(buf) {
  const ctx = audioContext();
  const pcm = new Int16Array(buf);
  if (!pcm.length) return;
  const audio = ctx.createBuffer(1, pcm.length, voice.replyRate);
  const ch = audio.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) ch[i] = pcm[i] / 32768;
  const node = ctx.createBufferSource();
  node.buffer = audio;
  node.connect(ctx.destination);
  if (!voice.heardReply) { voice.heardReply = true; performance.mark("talk-first-audio"); }
  voice.playAt = Math.max(voice.playAt, ctx.currentTime);
  node.start(voice.playAt);
  voice.sources.add(node);
  node.onended = () => { voice.sources.delete(node); showPlaying(); };
  showPlaying();
  voice.playAt += audio.duration;
  voice.played += audio.duration;
  $("#view-talk").dataset.playedMs = String(Math.round(voice.played * 1000));
}

function showPressed(on) {
  const btn = $("#ptt");
  btn.setAttribute("aria-pressed", String(on));
  btn.textContent = on ? "Listening… release to send" : "Hold to talk";
}

async function startTalking() {
  if (voice.talking) return;
  voice.talking = true;
  showPressed(true);
  if (voice.opening) return;  // the open under way sees `talking` again and carries on
  voice.opening = true;
  try {
    await openMic();
    if (voice.ctx.state === "suspended") await voice.ctx.resume();
    const ws = await openVoiceSocket();
    stopPlayback();
    voice.heardReply = false;
    voice.reply = "";
    $("#talk-reply").textContent = "—";
    ws.send(JSON.stringify({ type: "start", sample_rate: VOICE_RATE }));
    talkStatus("Listening…");
  } catch (err) {
    voice.talking = false;
    showPressed(false);
    closeMic();
    talkStatus(`Cannot listen: ${err.message}`);
  } finally {
    voice.opening = false;
  }
  if (!voice.talking) finishTalking();  // released while the mic was still opening
}

function stopTalking() {
  if (!voice.talking) return;
  voice.talking = false;
  showPressed(false);
  if (!voice.opening) finishTalking();  // else startTalking finishes once the mic is open
}

function finishTalking() {
  performance.mark("talk-release");
  if (!voice.handsFree) closeMic();
  if (voice.ws && voice.ws.readyState === WebSocket.OPEN) {
    voice.ws.send(JSON.stringify({ type: "end" }));
    talkStatus("Transcribing…");
  }
}

// "okay_nabu" -> "Okay Nabu", as the status line says it.
function wakePhrase(word) {
  return word.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}

// The wake earcon, made here: the node sends none over the socket (docs/api.md).
function chime() {
  const ctx = audioContext();
  let at = ctx.currentTime;
  for (const hz of [880, 1320]) {
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = hz;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(ctx.destination);
    osc.start(at);
    osc.stop(at + 0.08);
    at += 0.08;
  }
}

// Hands-free: the microphone streams continuously and the node listens for the wake word.
// The browser cancels our own playback's echo (getUserMedia's echoCancellation), so the
// node may keep listening for speech while a reply plays (echo_cancelled).
async function setHandsFree(on, why = "") {
  const box = $("#hands-free"), talk = $("#view-talk");
  box.checked = on;
  $("#ptt").disabled = on;
  if (!on) {
    const was = voice.handsFree;
    voice.handsFree = false;
    talk.dataset.handsFree = "off";
    if (was && voice.ws && voice.ws.readyState === WebSocket.OPEN) {
      voice.ws.send(JSON.stringify({ type: "start", sample_rate: VOICE_RATE, hands_free: false }));
    }
    if (!voice.talking) closeMic();
    talkStatus(why || "Idle.");
    return;
  }
  try {
    await openMic();
    if (voice.ctx.state === "suspended") await voice.ctx.resume();
    const ws = await openVoiceSocket();
    voice.handsFree = true;
    talk.dataset.handsFree = "on";
    ws.send(JSON.stringify({ type: "start", sample_rate: VOICE_RATE, hands_free: true, echo_cancelled: true }));
  } catch (err) {
    setHandsFree(false, `Cannot listen: ${err.message}`);
  }
}

function setupTalk() {
  const btn = $("#ptt");
  if (!window.isSecureContext || !navigator.mediaDevices) {
    $("#talk-insecure").hidden = false;
    btn.disabled = true;
    $("#hands-free").disabled = true;
    return;
  }
  if (!state.features.voice) {
    $("#talk-unavailable").hidden = false;
    btn.disabled = true;
    $("#hands-free").disabled = true;
    return;
  }
  $("#hands-free").addEventListener("change", (e) => setHandsFree(e.target.checked));
  btn.addEventListener("pointerdown", (e) => { e.preventDefault(); btn.setPointerCapture?.(e.pointerId); startTalking(); });
  btn.addEventListener("pointerup", stopTalking);
  btn.addEventListener("pointercancel", stopTalking);
  btn.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); startTalking(); }
  });
  btn.addEventListener("keyup", (e) => {
    if (e.key === " " || e.key === "Enter") { e.preventDefault(); stopTalking(); }
  });
  btn.addEventListener("blur", stopTalking);
}

// ---------------------------------------------------------------- sign-in and devices

function showSignIn() {
  $("#view-signin").hidden = false;
  $("#views").hidden = true;
  $("#main").hidden = true;
  $("#node-badge").textContent = "not signed in";
  const form = $("#signin-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const code = $("#signin-code").value.trim();
    const r = await fetch("/api/signin", {
      method: "POST", body: JSON.stringify({ code }),
      headers: { "Content-Type": "application/json", Accept: "application/json" },
    });
    if (r.ok) { location.reload(); return; }
    $("#signin-error").textContent = errorText(await r.json().catch(() => ({})), r.status);
    $("#signin-code").focus();
  });
  $("#signin-code").focus();
  document.body.dataset.signin = "true";
}

async function loadDevices() {
  const body = await getJSON("/api/devices");
  $("#device-list").replaceChildren(...(body.devices || []).map((d) => el("li", {},
    `${d.name} `, el("button", { type: "button", class: "secondary", ariaLabel: `Unpair ${d.name}`,
      onclick: async () => { await fetch(`/api/devices/${encodeURIComponent(d.id)}`, { method: "DELETE" }); loadDevices(); } },
    "Unpair"))));
}

function setupDevices(caller) {
  if (caller.kind === "device") {
    $("#signed-in").hidden = false;
    $("#device-name").textContent = caller.name;
    $("#signout").addEventListener("click", async () => {
      await fetch("/api/signout", { method: "POST" });
      location.reload();
    });
  }
  if (caller.kind !== "loopback") return;
  $("#devices").hidden = false;
  loadDevices().catch(() => {});
  $("#pair-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await fetch("/api/devices", {
      method: "POST", body: JSON.stringify({ name: $("#pair-name").value.trim() }),
      headers: { "Content-Type": "application/json" },
    });
    const body = await r.json().catch(() => ({}));
    $("#pair-code").textContent = r.ok
      ? `Code ${body.code} (valid ${Math.round(body.expires_s / 60)} minutes). Certificate SHA-256: ${body.https_fingerprint}`
      : errorText(body, r.status);
  });
}

// ---------------------------------------------------------------- start

async function main() {
  setupTabs();
  let caller = { kind: "" };
  try {
    const r = await fetch("/api/ui", { headers: { Accept: "application/json" } });
    if (r.status === 401) {
      showSignIn();
      document.body.dataset.ready = "true";
      return;
    }
    const ui = await r.json();
    if (!r.ok) throw new Error(errorText(ui, r.status));
    state.features = ui.features || {};
    state.blocked = ui.blocked || {};
    caller = ui.caller || caller;
  } catch (err) {
    $("#node-badge").textContent = `cannot reach the node: ${err.message}`;
  }
  setupDevices(caller);
  setupChat();
  setupTalk();
  setupWorld();
  pollCluster();
  document.body.dataset.ready = "true";
  performance.mark("ui-ready");
}

main();
