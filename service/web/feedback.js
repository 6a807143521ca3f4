// The network_feedback events the web viewer sends the host ten times a second, as farview's
// Python client does (streaming/congestion.py, NetworkFeedback): how long the stream waits in a
// queue on its way down, and the rate the browser receives. Congestion control cuts before a
// narrowed link overflows when it sees the queue grow, and cuts to what the link delivered
// (not to what got through a burst of loss) when it knows the rate. Pure code; times in ms.

export const FEEDBACK_INTERVAL_MS = 100;
export const FLOOR_WINDOW_MS = 30000;
export const RATE_WINDOW_MS = 250; // the browser's byte counts move in steps: 100 ms read 1-3.5 Mbit/s on a steady 2

// A message's trip from the host, up to a constant (the clocks' offset, the same for a whole
// stream, which QueueMeter takes out): when it arrived, less when the host sent its frame (the
// frame's pts, 90 kHz, plus its encoding).
export function downlinkMs(arrivedMs, pts, encodeUs) {
  return arrivedMs - pts / 90 - encodeUs / 1000;
}

// How much longer than their least (over FLOOR_WINDOW_MS) trips take: the lower quartile of the
// samples since the last take. A queue delays every sample; a frame that waited for a resent
// packet is one of a few.
export class QueueMeter {
  constructor() {
    this.floor = []; // [time, trip], trips increasing: the window's least is first
    this.pending = [];
  }

  add(tripMs, nowMs) {
    while (this.floor.length && this.floor[this.floor.length - 1][1] >= tripMs) this.floor.pop();
    this.floor.push([nowMs, tripMs]);
    while (nowMs - this.floor[0][0] > FLOOR_WINDOW_MS) this.floor.shift();
    this.pending.push(tripMs - this.floor[0][1]);
  }

  take() {
    if (!this.pending.length) return null;
    const sorted = this.pending.sort((a, b) => a - b);
    this.pending = [];
    return sorted[Math.floor(sorted.length / 4)];
  }
}

// Two meters: presented frames (when their last packet arrived, requestVideoFrameCallback's
// receiveTime) and the frames' metadata messages (when each arrived). The report is the lesser:
// metadata is never resent, so a frame that waited for a resent packet does not read as a queue
// (under heavy random loss nearly every frame waits, and a loss taken for a full queue cut the
// rate to its floor), while a frame's own trip is not delayed by the page's main thread.
export class NetworkFeedback {
  constructor() {
    this.frames = new QueueMeter();
    this.metadata = new QueueMeter();
    this.sentAt = -Infinity;
    this.counts = []; // [time, bytes received], the last RATE_WINDOW_MS and one before
    this.rateKbps = null;
  }

  onFrame(receivedAtMs, pts, encodeUs, nowMs) {
    this.frames.add(downlinkMs(receivedAtMs, pts, encodeUs), nowMs);
  }

  onMetadata(pts, encodeUs, nowMs) {
    this.metadata.add(downlinkMs(nowMs, pts, encodeUs), nowMs);
  }

  // The video bytes received so far (every RTP packet's, resends too).
  onBytes(totalBytes, nowMs) {
    const last = this.counts[this.counts.length - 1];
    if (last && (nowMs <= last[0] || totalBytes < last[1])) this.counts = []; // a new stream
    this.counts.push([nowMs, totalBytes]);
    while (this.counts.length > 2 && nowMs - this.counts[1][0] >= RATE_WINDOW_MS) this.counts.shift();
    const [t0, b0] = this.counts[0];
    if (nowMs - t0 >= RATE_WINDOW_MS) this.rateKbps = ((totalBytes - b0) * 8) / (nowMs - t0);
  }

  // The event's data when one is due: {queue_ms, received_kbps?}, or null.
  due(nowMs) {
    if (nowMs - this.sentAt < FEEDBACK_INTERVAL_MS) return null;
    const readings = [this.frames.take(), this.metadata.take()].filter((v) => v !== null);
    if (!readings.length) return null;
    this.sentAt = nowMs;
    const out = { queue_ms: Math.round(Math.min(...readings) * 100) / 100 };
    if (this.rateKbps !== null) out.received_kbps = Math.round(this.rateKbps * 10) / 10;
    return out;
  }
}
