#version 330 core
// Main pass, fragment stage: the lit colour (per pixel, or interpolated from the vertices with
// VERTEX_LIGHTING) and, beside it, the pixel's BT.601 limited-range luma, so the encoder's Y
// plane needs no conversion pass.
uniform float u_alpha;          // < 1 for see-through entities

#ifdef VERTEX_LIGHTING
in vec3 v_color;
#else
in vec3 v_world;
in vec3 v_normal;
#endif

layout(location = 0) out vec4 frag_color;
layout(location = 1) out vec4 frag_luma;  // Y in .r (alpha for blending)

void main() {
#ifdef VERTEX_LIGHTING
    vec3 display = v_color;
#else
    vec3 display = shade(v_world, v_normal);
#endif
    frag_color = vec4(display, u_alpha);
    frag_luma = vec4((16.0 + dot(display, vec3(65.481, 128.553, 24.966))) / 255.0, 0.0, 0.0, u_alpha);
}
