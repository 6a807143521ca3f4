// WebXR (immersive-vr): each XR frame sends both eyes' views (pose and FOV, placed in the
// scene) as one stereo pose message; the side-by-side video frames that come back are drawn
// per eye, turned from the orientation each eye was rendered with to the one it has now (a
// rotation-only reprojection in the fragment shader, as the desktop headset mode does).
import { quatFromAxisAngle, quatMul, quatRotate } from "./camera.js";

export async function xrSupported() {
  try {
    return Boolean(navigator.xr && (await navigator.xr.isSessionSupported("immersive-vr")));
  } catch (e) {
    return false;
  }
}

// tangents of the four half-angles of a WebGL projection matrix (column-major)
export function fovFromProjection(m) {
  return [(m[8] - 1) / m[0], (m[8] + 1) / m[0], (m[9] + 1) / m[5], (m[9] - 1) / m[5]];
}

// the rigid map from the XR reference space to the scene: the head's first pose lands on the
// camera's home eye, turned to face where the camera looks (yaw only)
export function placement(headPosition, headOrientation, homeEye, homeYaw) {
  const f = quatRotate(headOrientation, [0, 0, -1]);
  const heading = Math.atan2(-f[0], -f[2]);
  const rot = quatFromAxisAngle([0, 1, 0], homeYaw - heading);
  const moved = quatRotate(rot, headPosition);
  const offset = [homeEye[0] - moved[0], homeEye[1] - moved[1], homeEye[2] - moved[2]];
  return {
    position: (p) => { const r = quatRotate(rot, p); return [r[0] + offset[0], r[1] + offset[1], r[2] + offset[2]]; },
    orientation: (q) => quatMul(rot, q),
  };
}

const VERTEX = `#version 300 es
in vec2 corner; out vec2 ndc;
void main() { ndc = corner; gl_Position = vec4(corner, 0.0, 1.0); }`;

// per eye: the ray of this pixel in the current view → the rendered view's camera space →
// its texture coordinate in that eye's half of the side-by-side frame
const FRAGMENT = `#version 300 es
precision highp float;
in vec2 ndc; out vec4 colour;
uniform sampler2D frame; uniform mat3 toRendered; uniform vec4 fovNow; uniform vec4 fovRendered; uniform float eye;
void main() {
  vec2 t = (ndc * 0.5 + 0.5);
  vec3 dir = vec3(mix(fovNow.x, fovNow.y, t.x), mix(fovNow.w, fovNow.z, t.y), -1.0);
  vec3 r = toRendered * dir;
  if (r.z >= -1e-4) { colour = vec4(0.0); return; }
  vec2 tn = r.xy / -r.z;
  vec2 uv = vec2((tn.x - fovRendered.x) / (fovRendered.y - fovRendered.x),
                 (fovRendered.z - tn.y) / (fovRendered.z - fovRendered.w));
  if (any(lessThan(uv, vec2(0.0))) || any(greaterThan(uv, vec2(1.0)))) { colour = vec4(0.0, 0.0, 0.0, 1.0); return; }
  colour = texture(frame, vec2((uv.x + eye) * 0.5, uv.y));
}`;

function mat3FromQuat(q) { // column-major rotation matrix of q
  const [x, y, z, w] = q;
  return [1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w),
    2 * (x * y - z * w), 1 - 2 * (x * x + z * z), 2 * (y * z + x * w),
    2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)];
}

// R(rendered)^T · R(now): a direction in the current eye's space → the rendered eye's space
export function toRenderedMatrix(qRendered, qNow) {
  const a = mat3FromQuat(qRendered);
  const b = mat3FromQuat(qNow);
  const out = new Array(9).fill(0);
  for (let c = 0; c < 3; c++) {
    for (let r = 0; r < 3; r++) {
      for (let k = 0; k < 3; k++) out[c * 3 + r] += a[r * 3 + k] * b[c * 3 + k];
    }
  }
  return out;
}

function program(gl) {
  const make = (type, src) => {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  };
  const p = gl.createProgram();
  gl.attachShader(p, make(gl.VERTEX_SHADER, VERTEX));
  gl.attachShader(p, make(gl.FRAGMENT_SHADER, FRAGMENT));
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
  return p;
}

export async function startXr(stream, video, onEnd, camera = window.farview.camera) {
  const session = await navigator.xr.requestSession("immersive-vr", { optionalFeatures: ["local-floor"] });
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl2", { xrCompatible: true });
  const layer = new XRWebGLLayer(session, gl);
  session.updateRenderState({ baseLayer: layer });
  let space;
  try {
    space = await session.requestReferenceSpace("local-floor");
  } catch (e) {
    space = await session.requestReferenceSpace("local");
  }
  const prog = program(gl);
  const quad = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, quad);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const texture = gl.createTexture();
  gl.bindTexture(gl.TEXTURE_2D, texture);
  for (const [k, v] of [[gl.TEXTURE_MIN_FILTER, gl.LINEAR], [gl.TEXTURE_MAG_FILTER, gl.LINEAR],
    [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE]]) gl.texParameteri(gl.TEXTURE_2D, k, v);
  const loc = (n) => gl.getUniformLocation(prog, n);
  let place = null;
  let uploaded = null; // the pose of the picture in the texture
  const state = { session, frames: 0 };

  const onFrame = (time, frame) => {
    session.requestAnimationFrame(onFrame);
    const pose = frame.getViewerPose(space);
    if (!pose) return;
    if (!place) {
      const t = pose.transform;
      place = placement([t.position.x, t.position.y, t.position.z],
        [t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w], camera.eye(), camera.yaw);
    }
    const views = pose.views.slice(0, 2).map((v) => {
      const p = v.transform.position;
      const o = v.transform.orientation;
      return { position: place.position([p.x, p.y, p.z]), orientation: place.orientation([o.x, o.y, o.z, o.w]),
        fov: fovFromProjection(v.projectionMatrix) };
    });
    const vp = layer.getViewport(pose.views[0]);
    const eyeW = Math.min(vp.width, 1920) & ~1;
    const eyeH = Math.min(vp.height, 1920) & ~1;
    stream.sendPose(views, [eyeW * views.length, eyeH], 0.05, 1000);
    gl.bindFramebuffer(gl.FRAMEBUFFER, layer.framebuffer);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const latest = stream.lastFrame && stream.lastFrame.pose;
    gl.bindTexture(gl.TEXTURE_2D, texture);
    if (latest && latest.views.length === views.length && video.readyState >= 2) {
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, video);
      uploaded = latest;
    }
    // while the video has no current picture (a stall, a seek of the stream's clock), the last
    // one uploaded is drawn again, reprojected for the head's pose now: never a black frame
    const shown = uploaded;
    if (!shown || shown.views.length !== views.length) return;
    gl.useProgram(prog);
    gl.bindBuffer(gl.ARRAY_BUFFER, quad);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    pose.views.slice(0, 2).forEach((v, i) => {
      const port = layer.getViewport(v);
      gl.viewport(port.x, port.y, port.width, port.height);
      gl.uniformMatrix3fv(loc("toRendered"), false, toRenderedMatrix(shown.views[i].orientation, views[i].orientation));
      gl.uniform4fv(loc("fovNow"), views[i].fov);
      gl.uniform4fv(loc("fovRendered"), shown.views[i].fov);
      gl.uniform1f(loc("eye"), i);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    });
    state.frames++;
  };
  session.requestAnimationFrame(onFrame);
  session.addEventListener("end", onEnd);
  return state;
}
