// The web viewer's network_feedback (service/web/feedback.js): the same readings farview's
// Python client reports (streaming/congestion.py, QueueDelayMeter and NetworkFeedback). Run:
// node --test tests/web/ (tests/web/test_wire_vectors.py runs it in the Python suite).
import { test } from "node:test";
import assert from "node:assert/strict";
import { NetworkFeedback, QueueMeter, downlinkMs, FEEDBACK_INTERVAL_MS } from "../../service/web/feedback.js";

test("a trip is the arrival less the frame's send time (pts at 90 kHz, plus encoding)", () => {
  assert.equal(downlinkMs(1000, 9000, 5000), 1000 - 100 - 5);
});

test("the queue is the lower quartile of the trips' excess over the window's least", () => {
  const m = new QueueMeter();
  [10, 10, 30, 30, 30, 30, 30, 30].forEach((trip, i) => m.add(trip, i));
  assert.equal(m.take(), 20); // two frames at the floor, six 20 ms behind it
  assert.equal(m.take(), null); // nothing since
  [12, 11, 10].forEach((trip, i) => m.add(trip, 10 + i));
  assert.equal(m.take(), 0); // back at the floor (a frame that waited alone does not count)
});

test("the floor forgets trips older than 30 s", () => {
  const m = new QueueMeter();
  m.add(5, 0);
  m.add(50, 1000);
  assert.equal(m.take(), 0); // 5 is the floor: the two samples read 0 and 45
  m.add(50, 31000); // 5 is over 30 s old: the floor is 50 now
  assert.equal(m.take(), 0);
});

test("a report is due ten times a second: the lesser of frames' and metadata's queue, and the rate", () => {
  const fb = new NetworkFeedback();
  assert.equal(fb.due(0), null); // nothing heard yet
  // frames waited for resent packets (60 ms over their floor); the metadata, never resent, did not
  fb.onFrame(100, 0, 0, 100);
  fb.onMetadata(0, 0, 100);
  for (let i = 1; i <= 6; i++) {
    fb.onFrame(100 + 16 * i + 60, 90 * 16 * i, 0, 100 + 16 * i);
    fb.onMetadata(90 * 16 * i, 0, 100 + 16 * i);
  }
  fb.onBytes(0, 0);
  fb.onBytes(100_000, 100);
  fb.onBytes(200_000, 200);
  fb.onBytes(312_500, 300); // 312,500 bytes in 300 ms: 8,333 kbit/s
  assert.deepEqual(fb.due(300), { queue_ms: 0, received_kbps: 8333.3 });
  assert.equal(fb.due(300 + FEEDBACK_INTERVAL_MS - 1), null);
  // a queue: both see it
  for (let i = 7; i <= 12; i++) {
    fb.onFrame(100 + 16 * i + 25, 90 * 16 * i, 0, 100 + 16 * i);
    fb.onMetadata(90 * 16 * i, 0, 100 + 16 * i + 25);
  }
  assert.equal(fb.due(300 + FEEDBACK_INTERVAL_MS).queue_ms, 25);
});

test("the rate waits for a 250 ms window and restarts with a new stream's counts", () => {
  const fb = new NetworkFeedback();
  fb.onBytes(0, 0);
  fb.onBytes(10_000, 100);
  assert.equal(fb.rateKbps, null);
  fb.onBytes(25_000, 250);
  assert.equal(fb.rateKbps, 800); // 25,000 bytes in 250 ms
  fb.onBytes(0, 350); // the counter went back: another stream
  fb.onBytes(5_000, 450);
  assert.equal(fb.rateKbps, 800); // unchanged until a new window is full
  fb.onBytes(31_250, 600);
  assert.equal(fb.rateKbps, 1000);
});
