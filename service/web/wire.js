// farview's data-channel wire formats, in JavaScript: the same bytes as the Python codecs in
// input/pose.py, input/events.py, input/control.py and input/frame_meta.py. Both are tested
// against one vectors file (tests/web/wire_vectors.json). Pure code: no DOM, runs in Node too.

export const POSE_VERSION = 1;
export const INPUT_VERSION = 1;
export const CONTROL_VERSION = 1;
export const FRAME_META_VERSION = 2;
export const FRAME_META_BYTES = 48;
export const MAX_CONTROL_BYTES = 64 * 1024;
export const FLAG_KEYFRAME = 1;
export const EVENT_KINDS = { KEY: 1, BUTTON: 2, POINTER: 3, SCROLL: 4 };

export class ProtocolError extends Error {}

function finite(name, values) {
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ProtocolError(`${name} must be finite numbers, got ${JSON.stringify(values)}`);
    }
  }
}

function u64(value, name) {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << 64n) throw new ProtocolError(`${name} is outside 0..2^64-1`);
  return big;
}

// -- pose (client → host) -------------------------------------------------------------------
// {sequence, clientTimeUs, views: [{position: [x,y,z], orientation: [x,y,z,w],
//  fov: [tanLeft, tanRight, tanUp, tanDown]}], viewport: [w, h], near, far, keyframe}
export function encodePose(msg) {
  const views = msg.views;
  if (!Array.isArray(views) || views.length < 1 || views.length > 2) {
    throw new ProtocolError("a pose message has one view (mono) or two (stereo)");
  }
  const [w, h] = msg.viewport;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1 && w <= 7680 && h <= 7680)) {
    throw new ProtocolError(`viewport must be 1..7680 pixels each way, got ${w}x${h}`);
  }
  finite("clip planes", [msg.near, msg.far]);
  if (!(msg.near > 0 && msg.far > msg.near)) throw new ProtocolError("clip planes need 0 < near < far");
  const buf = new ArrayBuffer(28 + 44 * views.length);
  const d = new DataView(buf);
  d.setUint8(0, POSE_VERSION);
  d.setUint8(1, views.length);
  d.setUint16(2, msg.keyframe ? FLAG_KEYFRAME : 0, true);
  d.setUint32(4, msg.sequence >>> 0, true);
  d.setBigUint64(8, u64(msg.clientTimeUs, "client time"), true);
  d.setUint16(16, w, true);
  d.setUint16(18, h, true);
  d.setFloat32(20, msg.near, true);
  d.setFloat32(24, msg.far, true);
  let o = 28; // the header is <BBHIQHHff, 28 bytes
  for (const v of views) {
    finite("pose position", v.position);
    finite("pose orientation", v.orientation);
    finite("field of view", v.fov);
    const q = normalise(v.orientation);
    for (const x of [...v.position, ...q, ...v.fov]) {
      d.setFloat32(o, x, true);
      o += 4;
    }
  }
  return new Uint8Array(buf);
}

export function normalise(q) {
  const n = Math.hypot(q[0], q[1], q[2], q[3]);
  if (n < 1e-6) throw new ProtocolError("pose orientation is a zero quaternion; send a unit quaternion");
  return Math.abs(n - 1) > 1e-6 ? q.map((c) => c / n) : q;
}

export function decodePose(bytes) {
  const d = view(bytes);
  if (d.byteLength < 28) throw new ProtocolError(`pose message truncated: ${d.byteLength} bytes`);
  if (d.getUint8(0) !== POSE_VERSION) throw new ProtocolError(`pose version ${d.getUint8(0)} is not supported`);
  const count = d.getUint8(1);
  if (count < 1 || count > 2 || d.byteLength !== 28 + 44 * count) {
    throw new ProtocolError(`pose message with ${count} views must be ${28 + 44 * count} bytes`);
  }
  const f = (o) => d.getFloat32(o, true);
  const views = [];
  for (let i = 0, o = 28; i < count; i++, o += 44) {
    views.push({
      position: [f(o), f(o + 4), f(o + 8)],
      orientation: [f(o + 12), f(o + 16), f(o + 20), f(o + 24)],
      fov: [f(o + 28), f(o + 32), f(o + 36), f(o + 40)],
    });
  }
  return {
    sequence: d.getUint32(4, true), clientTimeUs: d.getBigUint64(8, true), views,
    viewport: [d.getUint16(16, true), d.getUint16(18, true)], near: f(20), far: f(24),
    keyframe: (d.getUint16(2, true) & FLAG_KEYFRAME) !== 0,
  };
}

// -- input events (client → host) -----------------------------------------------------------
// {kind: "KEY"|"BUTTON"|"POINTER"|"SCROLL", clientTimeUs, modifiers, key, button, action, x, y}
export function encodeInput(ev) {
  const kind = EVENT_KINDS[ev.kind];
  if (!kind) throw new ProtocolError(`unknown input event kind ${ev.kind}`);
  const body = { 1: 5, 2: 10, 3: 8, 4: 8 }[kind];
  const d = new DataView(new ArrayBuffer(12 + body));
  d.setUint8(0, INPUT_VERSION);
  d.setUint8(1, kind);
  d.setUint16(2, ev.modifiers || 0, true);
  d.setBigUint64(4, u64(ev.clientTimeUs || 0, "client time"), true);
  if (kind === 1) {
    d.setInt32(12, ev.key, true);
    d.setUint8(16, ev.action);
  } else if (kind === 2) {
    finite("button position", [ev.x, ev.y]);
    d.setUint8(12, ev.button);
    d.setUint8(13, ev.action);
    d.setFloat32(14, ev.x, true);
    d.setFloat32(18, ev.y, true);
  } else {
    finite("event coordinates", [ev.x, ev.y]);
    d.setFloat32(12, ev.x, true);
    d.setFloat32(16, ev.y, true);
  }
  return new Uint8Array(d.buffer);
}

export function decodeInput(bytes) {
  const d = view(bytes);
  if (d.byteLength < 12 || d.getUint8(0) !== INPUT_VERSION) throw new ProtocolError("not an input event");
  const kind = d.getUint8(1);
  const name = Object.keys(EVENT_KINDS).find((k) => EVENT_KINDS[k] === kind);
  if (!name) throw new ProtocolError(`unknown input event kind ${kind}`);
  const out = { kind: name, modifiers: d.getUint16(2, true), clientTimeUs: d.getBigUint64(4, true) };
  if (kind === 1) return { ...out, key: d.getInt32(12, true), action: d.getUint8(16) };
  if (kind === 2) {
    return { ...out, button: d.getUint8(12), action: d.getUint8(13), x: d.getFloat32(14, true), y: d.getFloat32(18, true) };
  }
  return { ...out, x: d.getFloat32(12, true), y: d.getFloat32(16, true) };
}

// -- control (both ways; JSON text) ---------------------------------------------------------
// {id, method, params} | {id, result} | {id, error: {code, message}} | {event, data}
export function encodeControl(msg) {
  let body;
  if ("method" in msg) body = { v: CONTROL_VERSION, id: msg.id, method: msg.method, params: msg.params || {} };
  else if ("result" in msg) body = { v: CONTROL_VERSION, id: msg.id, result: msg.result };
  else if ("error" in msg) body = { v: CONTROL_VERSION, id: msg.id, error: { code: msg.error.code, message: msg.error.message } };
  else if ("event" in msg) body = { v: CONTROL_VERSION, event: msg.event, data: msg.data || {} };
  else throw new ProtocolError("a control message is a request, a result, an error or an event");
  const text = JSON.stringify(body);
  if (new TextEncoder().encode(text).length > MAX_CONTROL_BYTES) {
    throw new ProtocolError(`control message is over ${MAX_CONTROL_BYTES} bytes`);
  }
  return text;
}

export function decodeControl(text) {
  if (typeof text !== "string") text = new TextDecoder().decode(text);
  if (text.length > MAX_CONTROL_BYTES) throw new ProtocolError("control message is over the size limit");
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError(`control message is not JSON: ${e.message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ProtocolError("control message must be a JSON object");
  }
  if (body.v !== CONTROL_VERSION) throw new ProtocolError(`control message version ${body.v} is not supported`);
  if ("event" in body) return { event: body.event, data: body.data ?? {} };
  if ("method" in body) return { id: body.id, method: body.method, params: body.params ?? {} };
  if ("result" in body) return { id: body.id, result: body.result };
  if ("error" in body) return { id: body.id ?? null, error: { code: String(body.error.code), message: String(body.error.message) } };
  throw new ProtocolError("control message is neither a request, a result, an error nor an event");
}

// -- frame metadata (host → client) ---------------------------------------------------------
export function decodeFrameMeta(bytes) {
  const d = view(bytes);
  if (d.byteLength < 1) throw new ProtocolError("frame metadata is empty");
  if (d.getUint8(0) !== FRAME_META_VERSION) {
    throw new ProtocolError(`frame metadata version ${d.getUint8(0)} is not supported (expected ${FRAME_META_VERSION})`);
  }
  if (d.byteLength !== FRAME_META_BYTES) throw new ProtocolError(`frame metadata must be ${FRAME_META_BYTES} bytes`);
  const u32 = (o) => d.getUint32(o, true);
  return {
    keyframe: (d.getUint8(1) & 1) !== 0, width: d.getUint16(2, true), height: d.getUint16(4, true),
    targetBitrate: d.getUint16(6, true) * 100000, pts: u32(8), poseSequence: u32(12),
    poseClientTimeUs: d.getBigUint64(16, true), renderUs: u32(24), readbackUs: u32(28), convertUs: u32(32),
    encodeUs: u32(36), sizeBytes: u32(40), waitUs: u32(44),
  };
}

export function encodeFrameMeta(m) {
  const d = new DataView(new ArrayBuffer(FRAME_META_BYTES));
  d.setUint8(0, FRAME_META_VERSION);
  d.setUint8(1, m.keyframe ? 1 : 0);
  d.setUint16(2, m.width, true);
  d.setUint16(4, m.height, true);
  d.setUint16(6, Math.min(65535, Math.floor((m.targetBitrate + 50000) / 100000)), true);
  const fields = [m.pts, m.poseSequence];
  fields.forEach((v, i) => d.setUint32(8 + 4 * i, v, true));
  d.setBigUint64(16, u64(m.poseClientTimeUs, "pose client time"), true);
  [m.renderUs, m.readbackUs, m.convertUs, m.encodeUs, m.sizeBytes, m.waitUs].forEach((v, i) => d.setUint32(24 + 4 * i, v, true));
  return new Uint8Array(d.buffer);
}

function view(bytes) {
  if (bytes instanceof ArrayBuffer) return new DataView(bytes);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
