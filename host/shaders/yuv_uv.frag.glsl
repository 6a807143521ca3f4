#version 330 core
// Chroma 4:2:0 on the GPU (the "gpu" chroma path): each output texel is the mean of a 2x2 block
// of the main pass's full-resolution U, V target (centre-sited, as swscale does for yuv420p).
// The texture is sampled bilinearly at the corner the four pixels share, where the four weights
// are exactly 1/4: one fetch per texel. Rows need no flip: the main pass stores the top row first.
uniform sampler2D u_chroma;
layout(location = 0) out float out_u;
layout(location = 1) out float out_v;

void main() {
    vec2 uv = gl_FragCoord.xy * 2.0 / vec2(textureSize(u_chroma, 0));
    vec2 c = texture(u_chroma, uv).rg;
    out_u = c.r;
    out_v = c.g;
}
