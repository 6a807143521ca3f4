#version 330 core
// Luma pass: BT.601 limited range, one output texel per source pixel. Rows are flipped here so
// that glReadPixels returns the image top row first, as the encoder wants, with no CPU flip.
uniform sampler2D u_rgb;
layout(location = 0) out float out_y;

void main() {
    ivec2 size = textureSize(u_rgb, 0);
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 c = texelFetch(u_rgb, ivec2(p.x, size.y - 1 - p.y), 0).rgb;
    out_y = (16.0 + dot(c, vec3(65.481, 128.553, 24.966))) / 255.0;
}
