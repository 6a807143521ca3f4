// A test-only WebXR device for tests/web/test_browser.py (headless Chromium has no XR runtime
// and no WebXR test API): two eyes 64 mm apart, 320x240 each, the head turning slowly
(() => {
  const eyes = [["left", -0.032], ["right", 0.032]];
  const proj = (l, r, t, b, n = 0.1, f = 100) => {
    const m = new Float32Array(16);
    m[0] = 2 * n / (n * r - n * l); m[5] = 2 * n / (n * t - n * b); m[8] = (r + l) / (r - l); m[9] = (t + b) / (t - b);
    m[10] = -(f + n) / (f - n); m[11] = -1; m[14] = -2 * f * n / (f - n); return m;
  };
  window.fakeXr = { fov: [[-1.0, 0.9, 0.95, -1.05], [-0.9, 1.0, 0.95, -1.05]], frames: 0, halves: null };
  const session = {
    listeners: {}, updateRenderState() {}, async requestReferenceSpace() { return {}; },
    addEventListener(type, fn) { this.listeners[type] = fn; },
    requestAnimationFrame(cb) {
      setTimeout(() => {
        const t = performance.now(); const yaw = 0.3 + t / 20000;
        const q = [0, Math.sin(yaw / 2), 0, Math.cos(yaw / 2)];
        const pos = (dx) => ({ x: 0.2 + dx * Math.cos(yaw), y: 1.6, z: 0.5 - dx * Math.sin(yaw) });
        const o = { x: q[0], y: q[1], z: q[2], w: q[3] };
        const frame = { getViewerPose: () => ({ transform: { position: pos(0), orientation: o },
          views: eyes.map(([eye, dx], i) => ({ eye, transform: { position: pos(dx), orientation: o },
            projectionMatrix: proj(...window.fakeXr.fov[i]) })) }) };
        cb(t, frame);
        const gl = window.fakeXr.gl;
        if (gl) {
          const px = new Uint8Array(640 * 240 * 4);
          gl.bindFramebuffer(gl.FRAMEBUFFER, null);
          gl.readPixels(0, 0, 640, 240, gl.RGBA, gl.UNSIGNED_BYTE, px);
          const lit = [0, 0]; // the model's coloured or bright parts, per eye (not the grey background)
          for (let y = 0; y < 240; y++) for (let x = 0; x < 640; x++) {
            const i = (y * 640 + x) * 4;
            if (Math.abs(px[i] - px[i + 2]) > 40 || px[i] + px[i + 1] + px[i + 2] > 400) lit[x < 320 ? 0 : 1]++;
          }
          window.fakeXr.halves = lit; window.fakeXr.frames++;
        }
      }, 16);
    },
  };
  navigator.xr.isSessionSupported = async (mode) => mode === "immersive-vr" || mode === "inline";
  navigator.xr.requestSession = async () => session;
  window.XRWebGLLayer = class {
    constructor(s, gl) { gl.canvas.width = 640; gl.canvas.height = 240; this.framebuffer = null; window.fakeXr.gl = gl; }
    getViewport(view) { return { x: view.eye === "left" ? 0 : 320, y: 0, width: 320, height: 240 }; }
  };
})();
