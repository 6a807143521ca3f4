// The JavaScript wire codecs (service/web/wire.js) against the vectors the Python codecs wrote
// (tests/web/wire_vectors.json). Run: node --test tests/web/ (tests/web/test_wire_vectors.py
// runs it in the Python suite).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as wire from "../../service/web/wire.js";

const vectors = JSON.parse(readFileSync(fileURLToPath(new URL("./wire_vectors.json", import.meta.url)), "utf8"));
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
const f32 = (x) => Math.fround(x);
const close = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

for (const c of vectors.pose) {
  test(`pose encodes as Python does: ${c.name}`, () => {
    assert.equal(hex(wire.encodePose({ ...c.value, clientTimeUs: BigInt(c.value.clientTimeUs) })), c.hex);
  });
  test(`pose decodes: ${c.name}`, () => {
    const m = wire.decodePose(bytes(c.hex));
    assert.equal(m.sequence, c.value.sequence);
    assert.equal(m.clientTimeUs, BigInt(c.value.clientTimeUs));
    assert.deepEqual(m.viewport, c.value.viewport);
    assert.equal(m.keyframe, c.value.keyframe);
    assert.equal(m.near, f32(c.value.near));
    m.views.forEach((v, i) => {
      const want = c.value.views[i];
      want.position.forEach((x, j) => assert.equal(v.position[j], f32(x)));
      want.fov.forEach((x, j) => assert.equal(v.fov[j], f32(x)));
      const q = wire.normalise(want.orientation);
      q.forEach((x, j) => close(v.orientation[j], x, "orientation"));
    });
  });
}

for (const c of vectors.input) {
  test(`input event encodes as Python does: ${c.name}`, () => {
    assert.equal(hex(wire.encodeInput({ ...c.value, clientTimeUs: BigInt(c.value.clientTimeUs) })), c.hex);
  });
  test(`input event decodes: ${c.name}`, () => {
    const ev = wire.decodeInput(bytes(c.hex));
    assert.equal(ev.kind, c.value.kind);
    assert.equal(ev.clientTimeUs, BigInt(c.value.clientTimeUs));
    for (const k of ["key", "button", "action", "modifiers"]) if (k in c.value) assert.equal(ev[k], c.value[k]);
    for (const k of ["x", "y"]) if (k in c.value) assert.equal(ev[k], f32(c.value[k]));
  });
}

for (const c of vectors.frame_meta) {
  test(`frame metadata decodes as Python encoded it: ${c.name}`, () => {
    const m = wire.decodeFrameMeta(bytes(c.hex));
    assert.deepEqual({ ...m, poseClientTimeUs: String(m.poseClientTimeUs) }, c.value);
  });
  test(`frame metadata encodes as Python does: ${c.name}`, () => {
    assert.equal(hex(wire.encodeFrameMeta({ ...c.value, poseClientTimeUs: BigInt(c.value.poseClientTimeUs) })), c.hex);
  });
}

for (const c of vectors.control_encode) {
  test(`control message encodes as Python does: ${c.name}`, () => {
    assert.equal(wire.encodeControl(c.value), c.text);
    assert.deepEqual(wire.decodeControl(c.text), c.value.method ? { params: {}, ...c.value } : c.value);
  });
}

for (const c of vectors.control_decode) {
  test(`control message decodes: ${c.name}`, () => {
    assert.deepEqual(wire.decodeControl(c.text), c.value);
  });
}

test("bad input is refused with a clear error", () => {
  assert.throws(() => wire.decodeFrameMeta(new Uint8Array([1, 0, 0])), /version 1 is not supported/);
  assert.throws(() => wire.decodeFrameMeta(new Uint8Array(47).fill(2)), /must be 48 bytes/);
  assert.throws(() => wire.decodePose(new Uint8Array(3)), /truncated/);
  assert.throws(() => wire.decodeControl("[1]"), /must be a JSON object/);
  assert.throws(() => wire.decodeControl("{"), /not JSON/);
  assert.throws(() => wire.encodePose({ sequence: 1, clientTimeUs: 0, views: [], viewport: [1, 1], near: 0.1, far: 1 }),
    /one view/);
  const v = { position: [0, 0, NaN], orientation: [0, 0, 0, 1], fov: [-1, 1, 1, -1] };
  assert.throws(() => wire.encodePose({ sequence: 1, clientTimeUs: 0, views: [v], viewport: [2, 2], near: 0.1, far: 1 }),
    /finite/);
});

// the camera and picking math, against the desktop viewer's (input/camera.py, client/scene.py)
import { OrbitCamera, pixelRay } from "../../service/web/camera.js";
import { fovFromProjection, placement, toRenderedMatrix } from "../../service/web/xr.js";

const near = (a, b, what) => a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-9, `${what}[${i}]: ${x} vs ${b[i]}`));

for (const c of vectors.camera) {
  test(`the web viewer's camera gives the desktop viewer's view (yaw ${c.state.yaw})`, () => {
    const cam = new OrbitCamera(c.state);
    const v = cam.view(c.aspect);
    near(v.position, c.view.position, "position");
    near(v.orientation, c.view.orientation, "orientation");
    near(v.fov, c.view.fov, "fov");
  });
}

for (const c of vectors.pixel_ray) {
  test("a pixel's ray is the desktop viewer's", () => {
    const r = pixelRay(c.view, c.size, c.x, c.y);
    near(r.origin, c.origin, "origin");
    near(r.direction, c.direction, "direction");
  });
}

test("WebXR: FOV tangents from a projection matrix", () => {
  // an asymmetric frustum: l=-1, r=0.8, t=0.6, b=-0.7 at near 1
  const [l, r, t, b, n, f] = [-1, 0.8, 0.6, -0.7, 1, 100];
  const m = new Array(16).fill(0);
  m[0] = (2 * n) / (r - l); m[5] = (2 * n) / (t - b); m[8] = (r + l) / (r - l); m[9] = (t + b) / (t - b);
  m[10] = -(f + n) / (f - n); m[11] = -1; m[14] = (-2 * f * n) / (f - n);
  near(fovFromProjection(m), [l, r, t, b], "fov");
});

test("WebXR: the head's first pose lands on the home eye, facing the model", () => {
  const yawLeft = [0, Math.sin(0.5), 0, Math.cos(0.5)]; // the head turned 1 rad left
  const place = placement([1, 1.6, 2], yawLeft, [0.5, 0.4, 1.5], 0.6);
  near(place.position([1, 1.6, 2]), [0.5, 0.4, 1.5], "position");
  const q = place.orientation(yawLeft);
  near([q[1], q[3]], [Math.sin(0.3), Math.cos(0.3)], "yaw 0.6"); // the camera's home yaw
});

test("WebXR: reprojection is the identity for an unchanged orientation, a turn otherwise", () => {
  const q = [0.1, 0.2, 0.3, Math.sqrt(1 - 0.14)];
  near(toRenderedMatrix(q, q), [1, 0, 0, 0, 1, 0, 0, 0, 1], "identity");
  const turned = toRenderedMatrix([0, 0, 0, 1], [0, Math.sin(0.25), 0, Math.cos(0.25)]); // now 0.5 rad left
  // straight ahead now (0, 0, -1) was 0.5 rad to the left when rendered
  const d = [turned[6] * -1, turned[7] * -1, turned[8] * -1];
  near(d, [-Math.sin(0.5), 0, -Math.cos(0.5)], "direction");
});
