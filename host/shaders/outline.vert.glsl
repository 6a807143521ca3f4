#version 330 core
// Selection outline: the selected mesh pushed outwards in screen space, away from its centre,
// by a fixed number of pixels. Drawn where the stencil does not hold the mesh itself, so only
// a ring around the silhouette remains. Cheap (no normals, no extra buffers).
layout(location = 0) in vec3 a_position;

uniform mat4 u_model;
uniform mat4 u_view_proj;
uniform vec3 u_center;         // centre of the mesh's local bounds
uniform vec2 u_width_ndc;      // outline width in NDC units (x, y)
uniform float u_point_size;    // point clouds (GL_POINTS): their size plus the outline's
uniform int u_cut_count;        // active cut planes (GL_CLIP_DISTANCE0.. enabled to match)
uniform vec4 u_cut_planes[8];   // a, b, c, d: a*x + b*y + c*z + d > 0 is cut away
out float gl_ClipDistance[8];

void main() {
    vec4 world = u_model * vec4(a_position, 1.0);
    vec4 clip = u_view_proj * world;
    vec4 centre = u_view_proj * (u_model * vec4(u_center, 1.0));
    vec2 dir = clip.xy / max(abs(clip.w), 1e-6) - centre.xy / max(abs(centre.w), 1e-6);
    float len = length(dir);
    dir = len > 1e-6 ? dir / len : vec2(0.0);
    clip.xy += dir * u_width_ndc * clip.w;
    // cut planes as clip distances: clipped in the vertex stage, so the fragment shader has
    // no discard and llvmpipe keeps its early depth test
    for (int i = 0; i < 8; ++i) {
        gl_ClipDistance[i] = i < u_cut_count
            ? -(dot(u_cut_planes[i].xyz, world.xyz) + u_cut_planes[i].w) : 1.0;
    }
    gl_Position = clip;
    gl_PointSize = u_point_size;
}
