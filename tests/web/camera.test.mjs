// The web viewer's framing (service/web/camera.js), as input/camera.py frames: the box whole
// across the view's height and, in a view narrower than high (a phone held upright), its width.
// Run: node --test tests/web/ (tests/web/test_wire_vectors.py runs it in the Python suite).
import { test } from "node:test";
import assert from "node:assert/strict";
import { FOV_Y_DEG, FRAMING_MARGIN, MAX_ZOOM_OUT, OrbitCamera, framing } from "../../service/web/camera.js";

const LO = [-0.325, -0.262, -0.261]; // the sample engine
const HI = [0.313, 0.271, 0.235];

test("a landscape view frames as before: the bounding sphere fits the height", () => {
  const radius = Math.hypot(0.638, 0.533, 0.496) / 2;
  const wide = framing(LO, HI, 0.6, -0.35, FOV_Y_DEG, 16 / 9);
  assert.ok(Math.abs(wide.distance - (radius / Math.tan(Math.PI / 6)) * FRAMING_MARGIN) < 1e-12);
  assert.equal(framing(LO, HI).distance, wide.distance); // (no aspect: the height only)
  assert.equal(framing(LO, HI, 0.6, -0.35, FOV_Y_DEG, 1).distance, wide.distance);
});

test("an upright view backs off until the sphere fits its width too", () => {
  const wide = framing(LO, HI, 0.6, -0.35, FOV_Y_DEG, 16 / 9);
  const upright = framing(LO, HI, 0.6, -0.35, FOV_Y_DEG, 0.45); // a phone, 412 x 915
  assert.ok(Math.abs(upright.distance / wide.distance - 1 / 0.45) < 1e-9);
  assert.deepEqual(upright.target, wide.target);
});

test("zooming out stops at MAX_ZOOM_OUT times the home view; zooming in does not", () => {
  const cam = new OrbitCamera({ target: [0, 0, 0], distance: 3, yaw: 0, pitch: 0 });
  cam.zoom(-10000);
  assert.ok(Math.abs(cam.distance - 3 * MAX_ZOOM_OUT) < 1e-9);
  cam.zoom(10000);
  assert.ok(cam.distance < 0.02);
});
