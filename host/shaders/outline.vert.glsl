#version 330 core
// Selection outline: the selected mesh pushed outwards in screen space, away from its centre,
// by a fixed number of pixels. Drawn where the stencil does not hold the mesh itself, so only
// a ring around the silhouette remains. Cheap (no normals, no extra buffers).
layout(location = 0) in vec3 a_position;

uniform mat4 u_model;
uniform mat4 u_view_proj;
uniform vec3 u_center;         // centre of the mesh's local bounds
uniform vec2 u_width_ndc;      // outline width in NDC units (x, y)

out vec3 v_world;

void main() {
    vec4 world = u_model * vec4(a_position, 1.0);
    v_world = world.xyz;
    vec4 clip = u_view_proj * world;
    vec4 centre = u_view_proj * (u_model * vec4(u_center, 1.0));
    vec2 dir = clip.xy / max(abs(clip.w), 1e-6) - centre.xy / max(abs(centre.w), 1e-6);
    float len = length(dir);
    dir = len > 1e-6 ? dir / len : vec2(0.0);
    clip.xy += dir * u_width_ndc * clip.w;
    gl_Position = clip;
}
