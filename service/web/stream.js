// One WHEP connection to a session's render host from the browser: the video, farview's four
// data channels (pose, input, control, frames), a control-request API, the 1 s heartbeat, and
// the match of each presented video frame to its metadata and the pose it was rendered for.
import { ApiError, errorOf, iceServersFromLinks } from "./api.js";
import * as wire from "./wire.js";
import { FEEDBACK_INTERVAL_MS, NetworkFeedback } from "./feedback.js";

const CHANNELS = [
  { label: "pose", ordered: false, maxRetransmits: 0 },
  { label: "input", ordered: true },
  { label: "control", ordered: true },
  { label: "frames", ordered: false, maxRetransmits: 0 },
];
const KEPT = 512;
const FEEDBACK_COPIES = 2; // network_feedback copies, as farview's Python client sends

export const nowUs = () => BigInt(Math.round(performance.now() * 1000));

export class FarviewStream {
  constructor(api, sessionId, video, { onEvent = () => {}, onFrame = () => {}, onClosed = () => {} } = {}) {
    this.api = api;
    this.sessionId = sessionId;
    this.video = video;
    this.onEvent = onEvent;
    this.onFrame = onFrame;
    this.onClosed = onClosed;
    this.pc = null;
    this.channels = {};
    this.location = null;
    this.sequence = 0;
    this.sent = new Map(); // sequence → the pose message sent
    this.metas = new Map(); // pts → frame metadata
    this.rtpOffset = null; // rtpTimestamp - pts (aiortc starts the RTP clock at a random value)
    this.misses = 0;
    this.feedbackNumber = -1; // network_feedback reports sent (their "n")
    this.pending = new Map(); // control request id → {resolve, reject, timer}
    this.nextId = 1;
    this.rttMs = null;
    this.closed = false;
    this.timers = [];
    this.lastFrame = null; // {meta, pose} of the newest presented frame
    this.feedback = new NetworkFeedback(); // what congestion control hears from this viewer
    this.receiver = null;
    this.feedbackBusy = false;
  }

  async connect(timeoutMs = 20000) {
    const url = this.api.whepUrl(this.sessionId);
    const headers = { Authorization: `Bearer ${this.api.token}` };
    let iceServers = [];
    const opt = await fetch(url, { method: "OPTIONS", headers, cache: "no-store" });
    if (opt.ok) iceServers = iceServersFromLinks(opt.headers.get("Link"));
    else if (opt.status !== 405) throw await errorOf(opt);
    // ?relay in the page's address: media only through the service's TURN server (to check
    // a TURN deployment), as `farview view --relay-only`
    const relay = new URLSearchParams(window.location.search).has("relay");
    if (relay && !iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)))) {
      // retrying cannot help: the page says so once (it retried every 2 s)
      throw Object.assign(new Error("relay only (?relay in the address): the service names no " +
        "TURN server to relay through; start it with --ice-server turn:HOST:3478 " +
        "--turn-secret-file FILE, or open the page without ?relay"),
      { permanent: true });
    }
    const pc = (this.pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relay ? "relay" : "all" }));
    for (const spec of CHANNELS) {
      const { label, ...init } = spec;
      const ch = pc.createDataChannel(label, init);
      ch.binaryType = "arraybuffer";
      this.channels[label] = ch;
    }
    this.channels.control.onmessage = (e) => this.onControl(e.data);
    this.channels.frames.onmessage = (e) => this.onMeta(e.data);
    const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
    // as little jitter buffering as the browser allows: a remote renderer wants the newest frame
    this.receiver = transceiver.receiver;
    if ("jitterBufferTarget" in transceiver.receiver) transceiver.receiver.jitterBufferTarget = 0;
    else if ("playoutDelayHint" in transceiver.receiver) transceiver.receiver.playoutDelayHint = 0;
    const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video");
    if (caps && transceiver.setCodecPreferences) {
      const h264 = caps.codecs.filter((c) => /video\/(h264|rtx)/i.test(c.mimeType));
      if (h264.length) transceiver.setCodecPreferences(h264);
    }
    pc.ontrack = (e) => {
      this.video.srcObject = e.streams[0] || new MediaStream([e.track]);
      this.video.play().catch(() => {});
      this.watchFrames();
    };
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState)) this.lost(`connection ${pc.connectionState}`);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 2000);
    const res = await fetch(url, {
      method: "POST", headers: { ...headers, "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (res.status !== 201) {
      pc.close();
      throw await errorOf(res);
    }
    this.location = res.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    await opened(this.channels.control, timeoutMs);
    this.channels.control.onclose = () => this.lost("the control channel closed");
    this.timers.push(setInterval(() => this.ping(), 1000));
    this.timers.push(setInterval(() => this.sendFeedback(), FEEDBACK_INTERVAL_MS));
  }

  // network_feedback, ten times a second on the frames channel (as farview's Python client
  // sends it): the queue the stream waits in and the rate received, for congestion control.
  async sendFeedback() {
    const ch = this.channels.frames;
    if (this.feedbackBusy || !this.receiver || !ch || ch.readyState !== "open") return;
    this.feedbackBusy = true;
    try {
      let bytes = null;
      (await this.receiver.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp") bytes = (s.bytesReceived || 0) + (s.headerBytesReceived || 0);
      });
      const now = performance.now();
      if (bytes !== null) this.feedback.onBytes(bytes, now);
      const data = this.feedback.due(now);
      if (data && ch.readyState === "open") {
        // numbered and sent twice (the channel does not retransmit): the host takes the first
        // copy to arrive, and under heavy loss one of two gets through far more often
        this.feedbackNumber += 1;
        const message = wire.encodeControl({ event: "network_feedback", data: { ...data, n: this.feedbackNumber } });
        for (let copy = 0; copy < FEEDBACK_COPIES; copy++) ch.send(message);
      }
    } catch (e) {
      /* the connection is closing */
    } finally {
      this.feedbackBusy = false;
    }
  }

  // -- poses and input ------------------------------------------------------------------------
  sendPose(views, viewport, near = 0.05, far = 1000, keyframe = false) {
    const ch = this.channels.pose;
    if (!ch || ch.readyState !== "open") return null;
    const msg = { sequence: ++this.sequence >>> 0, clientTimeUs: nowUs(), views, viewport, near, far, keyframe };
    const data = wire.encodePose(msg);
    ch.send(data);
    // A second copy: the pose channel does not retransmit, and a lost pose costs a frame (the
    // host renders when one arrives; it ignores the copy of a pose it has). Sent from a later
    // task, so that the browser's SCTP does not bundle both into one packet, lost together.
    setTimeout(() => { if (ch.readyState === "open") ch.send(data); }, 1);
    this.sent.set(msg.sequence, msg);
    if (this.sent.size > KEPT) this.sent.delete(this.sent.keys().next().value);
    return msg;
  }

  sendInput(event) {
    const ch = this.channels.input;
    if (ch && ch.readyState === "open") ch.send(wire.encodeInput({ clientTimeUs: nowUs(), ...event }));
  }

  // -- control ----------------------------------------------------------------------------------
  request(method, params = {}, timeoutMs = 30000) {
    const ch = this.channels.control;
    if (!ch || ch.readyState !== "open") return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ch.send(wire.encodeControl({ id, method, params }));
    });
  }

  onControl(data) {
    let msg;
    try {
      msg = wire.decodeControl(data);
    } catch (e) {
      console.warn("farview: bad control message from the host:", e.message);
      return;
    }
    if ("event" in msg) {
      this.onEvent(msg.event, msg.data);
      return;
    }
    const waiter = this.pending.get(msg.id);
    if (!waiter) return;
    this.pending.delete(msg.id);
    clearTimeout(waiter.timer);
    if ("error" in msg) waiter.reject(new ApiError(0, msg.error.code, msg.error.message));
    else waiter.resolve(msg.result);
  }

  async ping() {
    const t0 = performance.now();
    try {
      await this.request("ping", { t: t0 }, 3000);
      this.rttMs = performance.now() - t0;
    } catch (e) {
      if (!this.closed) this.lost("the host stopped answering");
    }
  }

  // -- frames -----------------------------------------------------------------------------------
  onMeta(data) {
    let meta;
    try {
      meta = wire.decodeFrameMeta(new Uint8Array(data));
    } catch (e) {
      console.warn("farview: bad frame metadata:", e.message);
      return;
    }
    this.feedback.onMetadata(meta.pts, meta.encodeUs, performance.now());
    this.metas.set(meta.pts, meta);
    if (this.metas.size > KEPT) this.metas.delete(this.metas.keys().next().value);
  }

  // The RTP clock starts at a random value (aiortc), so the offset between a frame's RTP
  // timestamp and its metadata's pts is found from the frames themselves: the one offset
  // under which the last few presented frames all have metadata.
  metaFor(rtpTimestamp) {
    if (rtpTimestamp === undefined) return null;
    if (this.rtpOffset !== null) {
      const meta = this.metas.get((rtpTimestamp - this.rtpOffset) >>> 0);
      if (meta) {
        this.misses = 0;
        return meta;
      }
      if (++this.misses < 30) return null;
      this.rtpOffset = null; // lost the match (a new stream?): find it again
    }
    this.recent = [...(this.recent || []), rtpTimestamp].slice(-4);
    const candidates = new Set([...this.metas.values()].map((m) => (rtpTimestamp - m.pts) >>> 0));
    const fits = [...candidates].filter((c) => this.recent.every((r) => this.metas.has((r - c) >>> 0)));
    if (fits.length !== 1 || this.recent.length < 3) return null;
    this.rtpOffset = fits[0];
    this.misses = 0;
    this.recent = [];
    return this.metas.get((rtpTimestamp - this.rtpOffset) >>> 0);
  }

  watchFrames() {
    const video = this.video;
    if (!video.requestVideoFrameCallback) return;
    const step = (now, md) => {
      if (this.closed) return;
      const meta = this.metaFor(md.rtpTimestamp);
      if (meta && md.receiveTime) this.feedback.onFrame(md.receiveTime, meta.pts, meta.encodeUs, performance.now());
      const pose = meta ? this.sent.get(meta.poseSequence) || null : null;
      const shownAt = md.expectedDisplayTime || now;
      if (this.firstShownAt === undefined) this.firstShownAt = shownAt;
      // pose → present of poses sent once the picture is up (not the connection's set-up)
      const poseToPresentMs = meta && meta.poseClientTimeUs > 0n && Number(meta.poseClientTimeUs) / 1000 >= this.firstShownAt
        ? shownAt - Number(meta.poseClientTimeUs) / 1000 : null;
      this.lastFrame = { meta, pose };
      this.onFrame({ meta, pose, poseToPresentMs, md });
      video.requestVideoFrameCallback(step);
    };
    video.requestVideoFrameCallback(step);
  }

  async videoStats() {
    if (!this.pc) return null;
    const out = {};
    (await this.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        Object.assign(out, { framesDecoded: s.framesDecoded, framesDropped: s.framesDropped, bytes: s.bytesReceived,
          fps: s.framesPerSecond, packetsLost: s.packetsLost, width: s.frameWidth, height: s.frameHeight,
          decoder: s.decoderImplementation });
      }
    });
    return out;
  }

  // -- ending -----------------------------------------------------------------------------------
  lost(reason) {
    if (this.closed) return;
    this.shutdown();
    this.onClosed(reason);
  }

  shutdown() {
    this.closed = true;
    this.timers.forEach(clearInterval);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error("the connection closed"));
    }
    this.pending.clear();
    if (this.pc) this.pc.close();
  }

  // The WHEP resource is deleted first, then the connection closed: closed first, the host could
  // end the resource before the DELETE came (a 404 in the browser's console).
  async close() {
    if (this.closed) return;
    const deleted = this.deleteResource();
    this.closed = true; // (nothing more is sent or reported meanwhile)
    await deleted;
    this.shutdown();
  }

  // close() for a page going away (pagehide): the DELETE outlives the page (keepalive), and
  // nothing is awaited
  closeNow() {
    if (this.closed) return;
    this.deleteResource();
    this.shutdown();
  }

  deleteResource() {
    const location = this.location;
    if (!location) return Promise.resolve();
    const url = location.startsWith("/") ? `${this.api.base}${location}` : location;
    return fetch(url, { method: "DELETE", keepalive: true, headers: { Authorization: `Bearer ${this.api.token}` } })
      .catch(() => { /* the host notices the closed connection too */ });
  }
}

function gathered(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const t = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

function opened(channel, ms) {
  return new Promise((resolve, reject) => {
    if (channel.readyState === "open") return resolve();
    const t = setTimeout(() => reject(new Error(`the connection did not open in ${ms / 1000} s`)), ms);
    channel.addEventListener("open", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
