#version 330 core
// Main pass, vertex stage. The renderer compiles a variant per set of material features
// (#defines, see host/renderer.py):
//   VERTEX_LIGHTING  light each vertex (lighting.glsl) and let the fragment stage interpolate:
//                    on llvmpipe per-pixel lighting was about 40 % of a frame. Only for
//                    primitives without textures (their colour varies across a triangle).
//   UV0, UV1         the primitive has TEXCOORD_0 / TEXCOORD_1 for its textures
//   BASE_TEX, MR_TEX, NORMAL_TEX, OCCLUSION_TEX, EMISSIVE_TEX: the textures it samples, each
//                    with its own coordinates (set and KHR_texture_transform, per vertex)
//   VERTEX_COLOR     COLOR_0 multiplies the base colour
//   CUT_PLANES       cut planes as clip distances
//   POINTS           a point cloud (GL_POINTS): no normals, unlit, u_point_size pixels a point
//   PIXEL_LIGHTS     with VERTEX_LIGHTING: the point/spot lights are added per pixel (their
//                    falloff is too local for vertices); the rest is still lit per vertex
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;
#ifdef UV0
layout(location = 2) in vec2 a_uv0;
#endif
#ifdef UV1
layout(location = 3) in vec2 a_uv1;
#endif
#ifdef VERTEX_COLOR
layout(location = 4) in vec4 a_color;
out vec4 v_vcolor;
#endif
#ifdef NORMAL_TEX
layout(location = 5) in vec4 a_tangent;
out vec4 v_tangent;
#endif

uniform mat4 u_model;
uniform mat3 u_normal_matrix;  // inverse-transpose of the model's 3x3, so scaled parts light right
uniform mat4 u_view_proj;
uniform float u_point_size;    // POINTS: pixels across (GL_PROGRAM_POINT_SIZE is enabled)
uniform float u_proxy_px;      // > 0: a batch's parts drawn as points, one at each part's
uniform vec3 u_proxy_eye;      // centre (renderer.PROXY_LEVEL), u_proxy_px / w pixels across,
                               // lit as if facing this eye
uniform mat3 u_uv_xf[5];       // per texture role: base, mr, normal, occlusion, emissive
uniform int u_uv_set[5];       // which TEXCOORD_n each role reads
#ifdef CUT_PLANES
uniform int u_cut_count;        // active cut planes (GL_CLIP_DISTANCE0.. enabled to match)
uniform vec4 u_cut_planes[8];   // a, b, c, d: a*x + b*y + c*z + d > 0 is cut away
out float gl_ClipDistance[8];
#endif

#if defined(VERTEX_LIGHTING) && !defined(PIXEL_LIGHTS)
out vec3 v_color;
#elif defined(VERTEX_LIGHTING)
out vec3 v_linear;      // key, fill and environment, linear (the fragment adds the lights)
out vec3 v_world;
out vec3 v_normal;
#else
out vec3 v_world;
out vec3 v_normal;
#endif
#ifdef BASE_TEX
out vec2 v_uv_base;
#endif
#ifdef MR_TEX
out vec2 v_uv_mr;
#endif
#ifdef NORMAL_TEX
out vec2 v_uv_normal;
#endif
#ifdef OCCLUSION_TEX
out vec2 v_uv_occlusion;
#endif
#ifdef EMISSIVE_TEX
out vec2 v_uv_emissive;
#endif

vec2 role_uv(int role) {
#if defined(UV0) && defined(UV1)
    vec2 uv = u_uv_set[role] == 0 ? a_uv0 : a_uv1;
#elif defined(UV1)
    vec2 uv = a_uv1;
#elif defined(UV0)
    vec2 uv = a_uv0;
#else
    vec2 uv = vec2(0.0);
#endif
    return (u_uv_xf[role] * vec3(uv, 1.0)).xy;
}

void main() {
    vec4 world = u_model * vec4(a_position, 1.0);
    vec3 normal = u_proxy_px > 0.0 ? u_proxy_eye - world.xyz : u_normal_matrix * a_normal;
#ifdef VERTEX_LIGHTING
    vec3 base = u_base_color.rgb;
#ifdef VERTEX_COLOR
    base *= a_color.rgb;
#endif
    vec3 n = normalize(normal) * facing(world.xyz, normal);
#ifdef PIXEL_LIGHTS
    v_linear = ambient_and_key(world.xyz, n, normalize(u_camera - world.xyz),
                               surface(base, u_metallic, u_roughness), 1.0);
    v_world = world.xyz;
    v_normal = normal;
#else
    v_color = shade(world.xyz, n, base, u_metallic, u_roughness, 1.0, u_emissive);
#endif
#else
    v_world = world.xyz;
    v_normal = normal;
#endif
#ifdef VERTEX_COLOR
    v_vcolor = a_color;
#endif
#ifdef NORMAL_TEX
    v_tangent = vec4(mat3(u_model) * a_tangent.xyz, a_tangent.w);
#endif
#ifdef CUT_PLANES
    // cut planes as clip distances: clipped in the vertex stage, so the fragment shader has
    // no discard and llvmpipe keeps its early depth test
    for (int i = 0; i < 8; ++i) {
        gl_ClipDistance[i] = i < u_cut_count
            ? -(dot(u_cut_planes[i].xyz, world.xyz) + u_cut_planes[i].w) : 1.0;
    }
#endif
#ifdef BASE_TEX
    v_uv_base = role_uv(0);
#endif
#ifdef MR_TEX
    v_uv_mr = role_uv(1);
#endif
#ifdef NORMAL_TEX
    v_uv_normal = role_uv(2);
#endif
#ifdef OCCLUSION_TEX
    v_uv_occlusion = role_uv(3);
#endif
#ifdef EMISSIVE_TEX
    v_uv_emissive = role_uv(4);
#endif
    gl_Position = u_view_proj * world;
#ifdef POINTS
    gl_PointSize = u_point_size;
#else
    gl_PointSize = clamp(u_proxy_px / gl_Position.w, 1.0, 64.0);
#endif
}
