#version 330 core
// Chroma pass at half resolution: average each 2x2 block of source pixels (centre-sited, as
// swscale does for yuv420p), then BT.601 limited-range Cb and Cr into two R8 targets.
uniform sampler2D u_rgb;
layout(location = 0) out float out_u;
layout(location = 1) out float out_v;

void main() {
    ivec2 size = textureSize(u_rgb, 0);
    ivec2 p = ivec2(gl_FragCoord.xy) * 2;
    int y0 = size.y - 1 - p.y;  // flipped rows, see yuv_y.frag.glsl
    vec3 c = texelFetch(u_rgb, ivec2(p.x, y0), 0).rgb
           + texelFetch(u_rgb, ivec2(p.x + 1, y0), 0).rgb
           + texelFetch(u_rgb, ivec2(p.x, y0 - 1), 0).rgb
           + texelFetch(u_rgb, ivec2(p.x + 1, y0 - 1), 0).rgb;
    c *= 0.25;
    out_u = (128.0 + dot(c, vec3(-37.797, -74.203, 112.0))) / 255.0;
    out_v = (128.0 + dot(c, vec3(112.0, -93.786, -18.214))) / 255.0;
}
