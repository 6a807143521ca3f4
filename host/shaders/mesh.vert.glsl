#version 330 core
// Main pass, vertex stage. With VERTEX_LIGHTING (the software-rasteriser default) it lights each
// vertex (lighting.glsl) and the fragment stage only interpolates: on llvmpipe per-pixel
// lighting was about 40 % of a frame. Without it, it passes world position and normal on.
// TEXTURED (always lit per pixel: the base colour varies across a triangle) passes the base
// colour texture's coordinates on.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;
#ifdef TEXTURED
layout(location = 2) in vec2 a_texcoord;
out vec2 v_texcoord;
#endif

uniform mat4 u_model;
uniform mat3 u_normal_matrix;  // inverse-transpose of the model's 3x3, so scaled parts light right
uniform mat4 u_view_proj;
#ifdef CUT_PLANES
uniform int u_cut_count;        // active cut planes (GL_CLIP_DISTANCE0.. enabled to match)
uniform vec4 u_cut_planes[8];   // a, b, c, d: a*x + b*y + c*z + d > 0 is cut away
out float gl_ClipDistance[8];
#endif

#ifdef VERTEX_LIGHTING
out vec3 v_color;
#else
out vec3 v_world;
out vec3 v_normal;
#endif

void main() {
    vec4 world = u_model * vec4(a_position, 1.0);
#ifdef VERTEX_LIGHTING
    v_color = shade(world.xyz, u_normal_matrix * a_normal, u_base_color.rgb);
#else
    v_world = world.xyz;
    v_normal = u_normal_matrix * a_normal;
#endif
#ifdef CUT_PLANES
    // cut planes as clip distances: clipped in the vertex stage, so the fragment shader has
    // no discard and llvmpipe keeps its early depth test
    for (int i = 0; i < 8; ++i) {
        gl_ClipDistance[i] = i < u_cut_count
            ? -(dot(u_cut_planes[i].xyz, world.xyz) + u_cut_planes[i].w) : 1.0;
    }
#endif
#ifdef TEXTURED
    v_texcoord = a_texcoord;
#endif
    gl_Position = u_view_proj * world;
}
