// The web viewer's camera: the desktop viewer's orbit/pan/zoom/fly camera (input/camera.py),
// the home view both start from, and the ray through a pixel for picking (client/scene.py's
// pixel_ray). Pure code: no DOM, runs in Node too.

export const HOME_YAW = 0.6; // input/camera.py HOME_YAW, HOME_PITCH: front left, a little above
export const HOME_PITCH = -0.35;
export const FOV_Y_DEG = 60;
export const MAX_PITCH = (89 * Math.PI) / 180;
export const ZOOM_STEP = 1.15;
export const MIN_DISTANCE = 0.01;
export const MAX_DISTANCE = 10000;
export const MAX_ZOOM_OUT = 20; // input/camera.py MAX_ZOOM_OUT
export const FRAMING_MARGIN = 1.3; // input/camera.py FRAMING_MARGIN
export const ORBIT_PER_HEIGHT = Math.PI; // radians per viewport height dragged

export function quatFromAxisAngle(axis, angle) {
  const n = Math.hypot(...axis);
  const s = Math.sin(angle / 2) / n;
  return [axis[0] * s, axis[1] * s, axis[2] * s, Math.cos(angle / 2)];
}

export function quatMul(a, b) {
  const [ax, ay, az, aw] = a;
  const [bx, by, bz, bw] = b;
  return [aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz];
}

export function quatRotate(q, v) {
  const [ux, uy, uz, w] = q;
  const tx = 2 * (uy * v[2] - uz * v[1]);
  const ty = 2 * (uz * v[0] - ux * v[2]);
  const tz = 2 * (ux * v[1] - uy * v[0]);
  return [v[0] + w * tx + (uy * tz - uz * ty), v[1] + w * ty + (uz * tx - ux * tz), v[2] + w * tz + (ux * ty - uy * tx)];
}

export function quatFromYawPitch(yaw, pitch) {
  return quatMul(quatFromAxisAngle([0, 1, 0], yaw), quatFromAxisAngle([1, 0, 0], pitch));
}

const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const clampPitch = (p) => Math.max(-MAX_PITCH, Math.min(MAX_PITCH, p));
const wrap = (a) => Math.atan2(Math.sin(a), Math.cos(a));

export function fovSymmetric(fovYDeg, aspect) {
  const t = Math.tan((fovYDeg * Math.PI) / 360);
  return [-t * aspect, t * aspect, t, -t];
}

// A camera state that shows the box lo..hi whole from (yaw, pitch)
// aspect: the view's width / height; a view narrower than it is high (a phone held upright)
// fits the box across its width (input/camera.py framing)
export function framing(lo, hi, yaw = HOME_YAW, pitch = HOME_PITCH, fovYDeg = FOV_Y_DEG, aspect = Infinity) {
  const centre = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2];
  const radius = Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2;
  const tanHalfY = Math.tan((fovYDeg * Math.PI) / 360);
  const fit = radius / Math.min(tanHalfY, tanHalfY * aspect);
  const distance = Math.min(Math.max(fit * FRAMING_MARGIN, MIN_DISTANCE * 10), MAX_DISTANCE);
  return { target: centre, distance, yaw, pitch };
}

export const SAMPLE_HOME = { target: [0, 0.02, 0], distance: 1.08, yaw: HOME_YAW, pitch: HOME_PITCH };

export class OrbitCamera {
  constructor(home = SAMPLE_HOME, fovYDeg = FOV_Y_DEG) {
    this.home = { ...home };
    this.fovYDeg = fovYDeg;
    this.reset();
  }

  reset() {
    this.target = [...this.home.target];
    this.distance = this.home.distance;
    this.yaw = this.home.yaw;
    this.pitch = clampPitch(this.home.pitch);
  }

  orientation() { return quatFromYawPitch(this.yaw, this.pitch); }
  forward() { return quatRotate(this.orientation(), [0, 0, -1]); }
  right() { return quatRotate(this.orientation(), [1, 0, 0]); }
  up() { return quatRotate(this.orientation(), [0, 1, 0]); }
  eye() { return add(this.target, scale(this.forward(), -this.distance)); }

  orbit(dYaw, dPitch) {
    this.yaw = wrap(this.yaw + dYaw);
    this.pitch = clampPitch(this.pitch + dPitch);
  }

  // a cursor motion in fractions of the viewport height (+x right, +y down)
  pan(dx, dy) {
    const visible = 2 * this.distance * Math.tan((this.fovYDeg * Math.PI) / 360);
    this.target = add(this.target, add(scale(this.right(), -dx * visible), scale(this.up(), dy * visible)));
  }

  zoom(steps) {
    const s = Math.max(-100, Math.min(100, steps));
    // no farther than MAX_ZOOM_OUT times the home view's distance (input/camera.py)
    const farthest = Math.min(MAX_DISTANCE, Math.max(this.distance, this.home.distance * MAX_ZOOM_OUT));
    this.distance = Math.min(farthest, Math.max(MIN_DISTANCE, this.distance * ZOOM_STEP ** -s));
  }

  move(forward, right, up, dt, speed) {
    const step = speed * dt;
    this.target = add(add(this.target, add(scale(this.forward(), forward * step), scale(this.right(), right * step))),
      [0, up * step, 0]);
  }

  // the view to send: {position, orientation, fov}
  view(aspect) {
    return { position: this.eye(), orientation: this.orientation(), fov: fovSymmetric(this.fovYDeg, aspect) };
  }
}

// World-space ray through pixel (x, y) (top row first) of an image of size [w, h] rendered with view
export function pixelRay(view, size, x, y) {
  const [w, h] = size;
  const [l, r, u, d] = view.fov;
  const tx = l + ((x + 0.5) / w) * (r - l);
  const ty = u - ((y + 0.5) / h) * (u - d);
  const dir = quatRotate(view.orientation, [tx, ty, -1]);
  const n = Math.hypot(...dir);
  return { origin: [...view.position], direction: scale(dir, 1 / n) };
}
