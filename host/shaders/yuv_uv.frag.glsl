#version 330 core
// Chroma at half resolution: each output texel is the mean of a 2x2 block of source pixels
// (centre-sited, as swscale does for yuv420p). The colour texture is sampled bilinearly at the
// corner the four pixels share, where the four weights are exactly 1/4: one fetch per texel.
// Rows need no flip: the main pass already stores the top row first.
uniform sampler2D u_rgb;
layout(location = 0) out float out_u;
layout(location = 1) out float out_v;

void main() {
    vec2 uv = gl_FragCoord.xy * 2.0 / vec2(textureSize(u_rgb, 0));
    vec3 c = texture(u_rgb, uv).rgb;
    out_u = (128.0 + dot(c, vec3(-37.797, -74.203, 112.0))) / 255.0;
    out_v = (128.0 + dot(c, vec3(112.0, -93.786, -18.214))) / 255.0;
}
