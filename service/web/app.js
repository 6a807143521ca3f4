// The web viewer: sign in, manage sessions, and view one: orbit/pan/zoom (mouse and touch),
// keyboard fly, picking, hide/show, model loading, statistics, reconnection, WebXR.
import { ApiError, FarviewApi } from "./api.js";
import { FOV_Y_DEG, HOME_PITCH, HOME_YAW, OrbitCamera, SAMPLE_HOME, framing, pixelRay } from "./camera.js";
import { FarviewStream } from "./stream.js";
import { startXr, xrSupported } from "./xr.js";

const $ = (id) => document.getElementById(id);
const api = new FarviewApi("");
const TERMINAL = new Set(["Stopped", "Expired", "Error"]);
const MAX_EDGE = 3840;

const state = {
  sessionId: null, stream: null, camera: new OrbitCamera(SAMPLE_HOME), dirty: true, viewport: [0, 0],
  keys: new Set(), selected: null, otherSelected: [], hidden: new Set(), statsVisible: true, leaving: false, reconnects: 0,
  lastPoseSequence: null, created: new Set(),
  presented: [], latencies: [], latencyLog: [], receiveLog: [], presentedLog: 0, lastStats: null, bitrate: null, xr: null, listTimer: null, loading: false,
};
window.farview = state; // for the tests' eyes only: nothing secret is in it (the token lives in api)

function show(panel) {
  for (const p of ["signin-panel", "sessions-panel", "viewer-panel"]) $(p).hidden = p !== panel;
}

function error(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
  if (message) setTimeout(() => { if (el.textContent === message) el.hidden = true; }, 8000);
}

function banner(message) {
  $("banner").textContent = message || "";
  $("banner").hidden = !message;
}

// -- sign in and sessions --------------------------------------------------------------------
$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = $("key").value;
  $("key").value = ""; // not kept anywhere
  try {
    await api.signIn($("account").value.trim(), key);
  } catch (err) {
    error(`Sign-in failed: ${err.message}`);
    return;
  }
  error(""); // a failed attempt's message is stale now
  $("who").textContent = `account ${api.account}`;
  $("signout").hidden = false;
  openSessions();
});

$("signout").addEventListener("click", async () => {
  await leaveViewer();
  api.signOut();
  clearInterval(state.listTimer);
  $("who").textContent = "";
  $("signout").hidden = true;
  show("signin-panel");
});

async function openSessions() {
  show("sessions-panel");
  await refreshSessions();
  clearInterval(state.listTimer);
  state.listTimer = setInterval(() => { if (!$("sessions-panel").hidden) refreshSessions(); }, 5000);
}

async function refreshSessions() {
  let sessions;
  try {
    sessions = await api.listSessions();
    // the list has live sessions only (ARR's); one this page made that has ended is still
    // shown, with why (a session that failed to start vanished, reason unsaid)
    const listed = new Set(sessions.map((s) => s.id));
    const ended = await Promise.all([...state.created].filter((id) => !listed.has(id))
      .map((id) => api.getSession(id).catch(() => null)));
    sessions = [...sessions, ...ended.filter(Boolean)];
  } catch (err) {
    error(`Listing sessions failed: ${err.message}`);
    return;
  }
  const body = $("sessions").querySelector("tbody");
  // the list is made anew: the button that had the focus gets it back (keyboard users lost it
  // every 5 s)
  const focused = document.activeElement;
  const row = focused && body.contains(focused) ? focused.closest("tr") : null;
  const again = row ? [row.dataset.id, focused.textContent] : null;
  body.replaceChildren(...sessions.map(sessionRow));
  if (again) {
    const b = [...body.querySelectorAll("tr")].find((tr) => tr.dataset.id === again[0]);
    const target = b && [...b.querySelectorAll("button")].find((x) => x.textContent === again[1]);
    if (target && !target.disabled) target.focus();
  }
  clearTimeout(state.soonTimer); // a session starting: its Ready shows within a second
  if (sessions.some((s) => s.status === "Starting")) {
    state.soonTimer = setTimeout(() => { if (!$("sessions-panel").hidden) refreshSessions(); }, 1000);
  }
}

function button(text, onClick, disabled = false) {
  const b = document.createElement("button");
  b.textContent = text;
  b.disabled = disabled;
  b.addEventListener("click", onClick);
  return b;
}

function sessionRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.id = s.id;
  const status = s.error && s.error.message ? `${s.status}: ${s.error.message}` : s.status;
  const cells = [s.id, status, s.size, `${s.elapsedTimeMinutes}/${s.maxLeaseTimeMinutes} min`];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (i === 0) td.className = "id";
    tr.append(td);
  });
  const td = document.createElement("td");
  const live = !TERMINAL.has(s.status);
  td.append(
    button("Open", () => openViewer(s.id), s.status !== "Ready"),
    button("Renew +30 min", () => act(() => api.renewSession(s.id, s.maxLeaseTimeMinutes + 30)), !live),
    button("Stop", () => act(() => api.stopSession(s.id)), !live),
  );
  tr.append(td);
  return tr;
}

async function act(fn) {
  try {
    await fn();
  } catch (err) {
    error(err.message);
  }
  refreshSessions();
}

$("create").addEventListener("submit", (e) => {
  e.preventDefault();
  act(async () => {
    const s = await api.createSession({ leaseMinutes: Number($("lease").value), size: $("size").value });
    state.created.add(s.id);
  });
});

// -- the viewer ----------------------------------------------------------------------------------
async function openViewer(id, remember = true) {
  if (remember) history.pushState({ viewer: id }, "", `#${encodeURIComponent(id)}`);
  state.sessionId = id;
  state.leaving = false;
  state.selected = null;
  state.otherSelected = [];
  state.sceneBox = null;
  state.hidden.clear();
  Object.assign(state, { presented: [], latencies: [], lastMeta: null, lastStats: null, bitrate: null,
    lastPoseSequence: null });
  state.camera = new OrbitCamera(SAMPLE_HOME);
  show("viewer-panel");
  $("picked").hidden = true;
  $("hide").disabled = true;
  $("xr").hidden = !(await xrSupported());
  await connect();
}

async function leaveViewer() {
  state.leaving = true;
  if (state.stream) await state.stream.close();
  state.stream = null;
  banner("");
}

async function backToSessions() {
  await leaveViewer();
  openSessions();
}

// the viewer has a history entry of its own: the browser's Back (or ◀ Sessions) returns to the
// sessions, Forward opens the viewer again (it left the app, and Forward signed out)
$("back").addEventListener("click", () => {
  if (history.state && history.state.viewer) history.back();
  else backToSessions();
});
window.addEventListener("popstate", (e) => {
  const id = e.state && e.state.viewer;
  if (!api.token) return;
  if (id && $("viewer-panel").hidden) openViewer(id, false);
  else if (!id && !$("viewer-panel").hidden) backToSessions();
});

// a tab or window closed: the session is freed at once (the host would notice after 4 s)
window.addEventListener("pagehide", () => { if (state.stream) state.stream.closeNow(); });

async function sessionProblem() {
  try {
    const s = await api.getSession(state.sessionId);
    if (TERMINAL.has(s.status)) {
      const why = s.error ? `: ${s.error.message.replace(/[.\s]*$/, "")}` : "";
      const what = /create a new session/.test(why) ? "" : " Go back to the sessions and create a new one.";
      return `This session is ${s.status}${why}.${what}`;
    }
    if (s.status !== "Ready") return `This session is ${s.status}; waiting for it to be Ready…`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return "This session does not exist (any more).";
    if (err instanceof ApiError && err.status === 401) return err.message;
  }
  return null;
}

async function connect() {
  const video = $("video");
  banner(state.reconnects ? "reconnecting…" : "connecting…");
  const stream = new FarviewStream(api, state.sessionId, video, {
    onEvent: onHostEvent,
    onFrame: onFrame,
    onClosed: (reason) => onLost(reason),
  });
  try {
    await stream.connect();
  } catch (err) {
    if (state.leaving) return;
    if (err && err.permanent) {
      banner(`Cannot connect: ${err.message}`);
      return;
    }
    const problem = await sessionProblem();
    if (problem && !problem.includes("waiting")) {
      banner(problem);
      return;
    }
    const busy = !problem && err instanceof ApiError && err.status === 409 && err.code !== "SessionNotReady";
    // (fetch's TypeError "Failed to fetch": no answer at all)
    const why = err instanceof TypeError ? `the farview service at ${location.origin} cannot be reached`
      : err.message;
    banner(problem || (busy ? "Another client is viewing this session; trying again every 5 s…"
      : `Could not connect (${why}); trying again…`));
    state.reconnects++;
    setTimeout(() => { if (!state.leaving && !state.stream) connect(); }, busy ? 5000 : 2000);
    return;
  }
  if (state.leaving) {
    stream.close();
    return;
  }
  state.stream = stream;
  state.reconnects = 0;
  banner("");
  state.dirty = true;
  frameScene(stream);
  showSceneSettings(stream);
  adoptSceneState(stream);
  showModelStatus(stream);
}

// -- the scene is the session's: what an earlier viewer (or a program) hid or selected stays so ---
async function adoptSceneState(stream) {
  try {
    const [hidden, selected] = await Promise.all([stream.request("find_entities", { hidden: true }),
      stream.request("find_entities", { selected: true })]);
    state.hidden = new Set(hidden.ids);
    state.otherSelected = selected.ids.slice(1);
    showSelected(selected.ids.length ? { id: selected.ids[0], name: selected.names[0] } : null);
  } catch (err) {
    console.warn("farview: reading the scene's hidden and selected parts failed:", err.message);
  }
}

// -- the session's start-up models: loading, loaded (framed) or failed (said, not a blank view) --
async function showModelStatus(stream) {
  try {
    const { models } = await stream.request("get_model_status", {});
    models.forEach(onModelStatus);
  } catch (err) {
    console.warn("farview: reading the models' status failed:", err.message);
  }
}

function onModelStatus(m) {
  if (m.status === "Loading") {
    $("status").textContent = `loading ${m.source} on the host…`;
  } else if (m.status === "Failed") {
    $("status").textContent = "";
    banner(`The model ${m.source} could not be loaded (${m.code}: ${m.message}). ` +
      "Load another with the field below.");
  } else if (m.status === "Loaded") {
    if ($("status").textContent === `loading ${m.source} on the host…`) $("status").textContent = "";
    if (state.stream) frameScene(state.stream);
  }
}

// -- level of detail and point size: the host's scene settings, shown as they are on connecting ---
async function showSceneSettings(stream) {
  try {
    const [detail, points] = await Promise.all([stream.request("get_level_of_detail", {}),
      stream.request("get_point_size", {})]);
    $("detail").setAttribute("aria-pressed", String(detail.mode === "full"));
    $("point-size").value = String(points.size);
  } catch (err) {
    console.warn("farview: reading the scene settings failed:", err.message);
  }
}

$("detail").addEventListener("click", async () => {
  if (!state.stream) return;
  const full = $("detail").getAttribute("aria-pressed") !== "true";
  try {
    const { mode } = await state.stream.request("set_level_of_detail", { mode: full ? "full" : "auto" });
    $("detail").setAttribute("aria-pressed", String(mode === "full"));
  } catch (err) {
    error(`Changing the level of detail failed: ${err.message}`);
  }
});

$("point-size").addEventListener("change", async () => {
  if (!state.stream) return;
  try {
    const { size } = await state.stream.request("set_point_size", { size: Number($("point-size").value) });
    $("point-size").value = String(size);
  } catch (err) {
    error(`Setting the point size failed: ${err.message}`);
    showSceneSettings(state.stream); // the field shows what the host has
  }
});

async function onLost(reason) {
  if (state.leaving) return;
  state.stream = null;
  const problem = await sessionProblem();
  if (problem && !problem.includes("waiting")) {
    banner(problem);
    return;
  }
  state.reconnects++;
  banner(`reconnecting… (${reason})`);
  setTimeout(() => { if (!state.leaving && !state.stream) connect(); }, 1000);
}

// the home view frames everything in the scene, as the desktop viewer does
async function frameScene(stream) {
  try {
    const { roots } = await stream.request("get_roots", { depth: 0 });
    const boxes = (await Promise.all(roots.map((r) => stream.request("get_bounds", { id: r.id, space: "world" }))))
      .filter(Boolean);
    if (!boxes.length) return;
    const lo = [0, 1, 2].map((i) => Math.min(...boxes.map((b) => b.min[i])));
    const hi = [0, 1, 2].map((i) => Math.max(...boxes.map((b) => b.max[i])));
    state.sceneBox = [lo, hi];
    state.camera.home = framing(lo, hi, HOME_YAW, HOME_PITCH, FOV_Y_DEG, aspectNow());
    state.camera.reset();
    state.dirty = true;
  } catch (err) {
    console.warn("farview: could not frame the scene:", err.message);
  }
}

function onHostEvent(event, data) {
  if (event === "load_progress") {
    if (!state.loading) return; // (a late report of a load that has ended)
    $("progress").hidden = false;
    $("progress").value = data.fraction ?? 0;
  } else if (event === "model_status") {
    onModelStatus(data);
  } else if (event === "closing") {
    banner(`The host closed the connection: ${data.reason}`);
  } else if (event === "bad_message") {
    console.warn("farview: the host refused a message:", data);
  }
}

// -- frames and statistics -----------------------------------------------------------------------
function onFrame({ meta, poseToPresentMs: shown, md }) {
  // a frame drawn again with the same pose (after a pick, a hide, a load) is not that pose's
  // latency: only the first frame of each pose counts
  const fresh = !!meta && meta.poseSequence !== state.lastPoseSequence;
  if (meta) state.lastPoseSequence = meta.poseSequence;
  const poseToPresentMs = fresh ? shown : null;
  if (poseToPresentMs !== null && md.receiveTime && meta && state.receiveLog.length < 100000) {
    state.receiveLog.push(md.receiveTime - Number(meta.poseClientTimeUs) / 1000); // pose → last packet in
  }
  const t = performance.now();
  state.presented.push(t);
  state.presentedLog++;
  while (state.presented.length && state.presented[0] < t - 1000) state.presented.shift();
  if (poseToPresentMs !== null && poseToPresentMs >= 0 && poseToPresentMs < 10000) {
    state.latencies.push(poseToPresentMs);
    if (state.latencyLog.length < 100000) state.latencyLog.push(poseToPresentMs); // benchmarks read it
    if (state.latencies.length > 300) state.latencies.shift();
  }
  state.lastMeta = meta;
}

function pct(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((s.length * p) / 100) - 1)];
}

async function updateStats() {
  const stream = state.stream;
  if ($("viewer-panel").hidden) return;
  if (!stream) { // (not the last session's numbers)
    $("overlay").textContent = "not connected";
    return;
  }
  const v = await stream.videoStats();
  const now = performance.now();
  // frames presented in the last second (none come while the picture is still)
  while (state.presented.length && state.presented[0] < now - 1000) state.presented.shift();
  if (v && state.lastStats) {
    state.bitrate = ((v.bytes - state.lastStats.bytes) * 8) / ((now - state.lastStats.t) / 1000);
  }
  if (v) state.lastStats = { bytes: v.bytes, t: now };
  const m = state.lastMeta;
  const f = (x, d = 1) => (x === null || x === undefined ? "–" : x.toFixed(d));
  // (frames come when the picture changes: 0 at rest is not a stall)
  const still = state.presented.length === 0 && stream.lastFrame ? "  (still: nothing changed)" : "";
  const lines = [
    `fps            ${state.presented.length}${still}`,
    `pose→present   p50 ${f(pct(state.latencies, 50))} ms  p95 ${f(pct(state.latencies, 95))} ms`,
    m ? `host           render ${f(m.renderUs / 1000)}  encode ${f(m.encodeUs / 1000)}  wait ${f(m.waitUs / 1000)} ms`
      : "host           –",
    `bitrate        ${f(state.bitrate === null ? null : state.bitrate / 1e6, 2)} Mbit/s` +
      (m && m.targetBitrate ? `  (target ${(m.targetBitrate / 1e6).toFixed(1)})` : ""),
    `RTT            ${f(stream.rttMs)} ms`,
    `dropped        ${v ? v.framesDropped ?? 0 : "–"}  lost packets ${v ? v.packetsLost ?? 0 : "–"}`,
    `video          ${v && v.width ? `${v.width}x${v.height}` : "–"}  ${v && v.decoder ? v.decoder : ""}`,
  ];
  $("overlay").textContent = lines.join("\n");
  $("overlay").hidden = !state.statsVisible;
}
setInterval(updateStats, 500);

$("stats-toggle").addEventListener("click", () => {
  state.statsVisible = !state.statsVisible;
  $("overlay").hidden = !state.statsVisible;
});

// -- poses ---------------------------------------------------------------------------------------
function aspectNow() {
  const [w, h] = viewportNow();
  return w / h;
}

function viewportNow() {
  const r = $("stage").getBoundingClientRect();
  const scale = Math.min(window.devicePixelRatio || 1, 2);
  const even = (x) => Math.max(16, Math.min(MAX_EDGE, Math.round(x * scale))) & ~1;
  return [even(r.width), even(r.height)];
}

let lastTick = performance.now();
function tick(now) {
  const dt = Math.min(0.1, (now - lastTick) / 1000);
  lastTick = now;
  const k = state.keys;
  const forward = (k.has("w") ? 1 : 0) - (k.has("s") ? 1 : 0);
  const right = (k.has("d") ? 1 : 0) - (k.has("a") ? 1 : 0);
  const up = (k.has("e") ? 1 : 0) - (k.has("q") ? 1 : 0);
  if (forward || right || up) {
    const boost = k.has("shift") ? 4 : 1;
    state.camera.move(forward, right, up, dt, state.camera.distance * boost);
    state.dirty = true;
  }
  const viewport = viewportNow();
  if (viewport[0] !== state.viewport[0] || viewport[1] !== state.viewport[1]) {
    state.viewport = viewport; // a resize: the host renders the new size from the next pose
    state.dirty = true;
    if (state.sceneBox) { // R fits the model to the new shape (the camera stays where it is)
      state.camera.home = framing(...state.sceneBox, HOME_YAW, HOME_PITCH, FOV_Y_DEG, viewport[0] / viewport[1]);
    }
  }
  if (state.dirty && state.stream && !state.xr) {
    const sent = state.stream.sendPose([state.camera.view(viewport[0] / viewport[1])], viewport, 0.05, 1000);
    if (sent) state.dirty = false;
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

// -- mouse, touch and keyboard -------------------------------------------------------------------
const pointers = new Map();
let drag = null;

function stageHeight() { return $("stage").getBoundingClientRect().height || 1; }

$("video").addEventListener("contextmenu", (e) => e.preventDefault());
$("video").addEventListener("pointerdown", (e) => {
  $("video").setPointerCapture(e.pointerId);
  pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
  drag = { x: e.clientX, y: e.clientY, moved: 0, button: e.button, shift: e.shiftKey, pinch: null };
});

$("video").addEventListener("pointermove", (e) => {
  if (!pointers.has(e.pointerId) || !drag) return;
  const prev = pointers.get(e.pointerId);
  const dx = (e.clientX - prev.x) / stageHeight();
  const dy = (e.clientY - prev.y) / stageHeight();
  pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
  drag.moved += Math.abs(e.clientX - prev.x) + Math.abs(e.clientY - prev.y);
  const cam = state.camera;
  if (pointers.size >= 2) { // two fingers: pinch zooms, moving together pans
    const [a, b] = [...pointers.values()];
    const dist = Math.hypot(a.x - b.x, a.y - b.y);
    if (drag.pinch) cam.zoom(Math.log(dist / drag.pinch) / Math.log(1.15));
    drag.pinch = dist;
    cam.pan(dx / 2, dy / 2);
  } else if (drag.button === 2 || drag.button === 1 || drag.shift) {
    cam.pan(dx, dy);
  } else {
    cam.orbit(-dx * Math.PI, -dy * Math.PI);
  }
  state.dirty = true;
});

function endPointer(e) {
  if (!pointers.has(e.pointerId)) return;
  pointers.delete(e.pointerId);
  if (drag && pointers.size === 0) {
    if (drag.moved < 4 && drag.button === 0 && e.type === "pointerup") pick(e.clientX, e.clientY);
    drag = null;
  }
}
$("video").addEventListener("pointerup", endPointer);
$("video").addEventListener("pointercancel", endPointer);

$("video").addEventListener("wheel", (e) => {
  e.preventDefault();
  state.camera.zoom(-e.deltaY / 100);
  state.dirty = true;
}, { passive: false });

window.addEventListener("keydown", (e) => {
  const t = e.target;
  if ($("viewer-panel").hidden || e.ctrlKey || e.metaKey || e.altKey || t instanceof HTMLInputElement
    || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
  const key = e.key.toLowerCase();
  if (key === "i") {
    $("stats-toggle").click();
  } else if (key === "f") {
    toggleFullscreen();
  } else if (key === "r") {
    resetView();
  } else if (key === "c") {
    frameSelected();
  } else if (key === "h") {
    hideSelected();
  } else {
    state.keys.add(key);
  }
});
window.addEventListener("keyup", (e) => state.keys.delete(e.key.toLowerCase()));
window.addEventListener("blur", () => state.keys.clear());

// the stage (picture, overlay, banner) on the whole screen; the host renders the new size
function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else $("stage").requestFullscreen().catch((err) => error(`Full screen failed: ${err.message}`));
}
$("fullscreen").addEventListener("click", toggleFullscreen);

function resetView() {
  state.camera.reset();
  state.dirty = true;
}
$("reset").addEventListener("click", resetView);

// frame the selected part (its bounds, from the current direction), or the whole scene
async function frameSelected() {
  const part = state.selected;
  if (!part || !state.stream) {
    resetView();
    return;
  }
  try {
    const box = await state.stream.request("get_bounds", { id: part.id, space: "world" });
    if (!box) return;
    const view = framing(box.min, box.max, state.camera.yaw, state.camera.pitch, state.camera.fovYDeg, aspectNow());
    state.camera.target = view.target;
    state.camera.distance = view.distance;
    state.dirty = true;
  } catch (err) {
    error(`Framing failed: ${err.message}`);
  }
}
$("frame").addEventListener("click", frameSelected);

// -- picking, hide and show ----------------------------------------------------------------------
async function pick(clientX, clientY) {
  const stream = state.stream;
  const frame = stream && stream.lastFrame;
  if (!frame || !frame.pose || !frame.meta) return;
  const video = $("video");
  const r = video.getBoundingClientRect();
  const w = frame.meta.width;
  const h = frame.meta.height;
  const s = Math.min(r.width / w, r.height / h); // object-fit: contain
  const x = (clientX - r.left - (r.width - w * s) / 2) / s;
  const y = (clientY - r.top - (r.height - h * s) / 2) / s;
  if (x < 0 || y < 0 || x >= w || y >= h) return;
  const eyes = frame.pose.views.length;
  const eye = Math.min(Math.floor(x / (w / eyes)), eyes - 1);
  const ray = pixelRay(frame.pose.views[eye], [w / eyes, h], x - (eye * w) / eyes, y);
  try {
    const { hits } = await stream.request("raycast", { ...ray, mode: "closest", max_distance: frame.pose.far });
    await select(hits.length ? { id: hits[0].id, name: hits[0].name } : null);
  } catch (err) {
    error(`Picking failed: ${err.message}`);
  }
}

async function select(part) {
  const stream = state.stream;
  const previous = [...(state.selected ? [state.selected.id] : []), ...state.otherSelected];
  state.otherSelected = [];
  showSelected(part);
  for (const id of previous) {
    if (!part || id !== part.id) await stream.request("set_state", { id, selected: null }).catch(() => {});
  }
  if (part) await stream.request("set_state", { id: part.id, selected: true });
}

function showSelected(part) {
  state.selected = part;
  $("picked").textContent = part ? `Selected: ${part.name || `entity ${part.id}`}` : "";
  $("picked").hidden = !part;
  $("hide").disabled = !part;
}

async function hideSelected() {
  const part = state.selected;
  if (!part || !state.stream) return;
  try {
    await state.stream.request("set_state", { id: part.id, hidden: true, selected: null });
    state.hidden.add(part.id);
    state.selected = null;
    $("picked").hidden = true;
    $("hide").disabled = true;
  } catch (err) {
    error(`Hiding failed: ${err.message}`);
  }
}
$("hide").addEventListener("click", hideSelected);

$("showall").addEventListener("click", async () => {
  if (!state.stream) return;
  try {
    const { ids } = await state.stream.request("find_entities", { hidden: true });
    for (const id of new Set([...ids, ...state.hidden])) {
      state.hidden.delete(id);
      await state.stream.request("set_state", { id, hidden: null }).catch((err) => {
        if (!/unknown entity/.test(err.message)) throw err; // (removed since: nothing to show)
      });
    }
  } catch (err) {
    error(`Showing failed: ${err.message}`);
  }
});

// -- loading a model -----------------------------------------------------------------------------
$("load").addEventListener("submit", async (e) => {
  e.preventDefault();
  const source = $("model-url").value.trim();
  if (!source || !state.stream) return;
  $("progress").hidden = false;
  $("progress").value = 0;
  $("status").textContent = `loading ${source}…`;
  error("");
  state.loading = true;
  try {
    const model = await state.stream.request("load_model", { source }, 600000);
    $("status").textContent = `loaded ${model.name || source} (${model.triangles} triangles)`;
    await frameScene(state.stream);
  } catch (err) {
    $("status").textContent = "";
    error(`Loading failed: ${err.message}`);
  } finally {
    state.loading = false;
    $("progress").hidden = true;
  }
});

// uploading a .glb: the file goes to the service (PUT …/scene/upload/NAME), which streams it to
// the host; XMLHttpRequest reports the upload's progress, the host then its own
$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  $("upload").value = "";
  if (file && state.stream) uploadModel(file);
});

function uploadModel(file) {
  const name = file.name.replace(/[^A-Za-z0-9._-]/g, "_").slice(-128);
  const xhr = new XMLHttpRequest();
  xhr.open("PUT", api.path(`/sessions/${encodeURIComponent(state.sessionId)}/scene/upload/${encodeURIComponent(name)}`));
  xhr.setRequestHeader("Authorization", `Bearer ${api.token}`);
  xhr.setRequestHeader("Content-Type", "model/gltf-binary");
  $("progress").hidden = false;
  $("progress").value = 0;
  $("status").textContent = `uploading ${file.name}…`;
  error("");
  state.loading = true;
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) $("progress").value = e.loaded / e.total; };
  xhr.upload.onload = () => { $("status").textContent = `loading ${file.name} on the host…`; };
  xhr.onerror = () => {
    state.loading = false;
    $("progress").hidden = true;
    error(`Uploading ${file.name} failed: the connection broke`);
  };
  xhr.onload = async () => {
    state.loading = false;
    $("progress").hidden = true;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status !== 200) {
      $("status").textContent = "";
      error(`Uploading ${file.name} failed: ${body && body.error ? body.error.message : `HTTP ${xhr.status}`}`);
      return;
    }
    $("status").textContent = `loaded ${body.name} (${body.triangles} triangles)`;
    if (state.stream) await frameScene(state.stream);
  };
  xhr.send(file);
}

// -- WebXR ---------------------------------------------------------------------------------------
$("xr").addEventListener("click", async () => {
  if (!state.stream) return;
  try {
    state.xr = await startXr(state.stream, $("video"), () => {
      state.xr = null;
      state.dirty = true;
    });
  } catch (err) {
    error(`WebXR failed: ${err.message}`);
  }
});

show("signin-panel");
