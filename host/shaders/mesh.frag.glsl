#version 330 core
// Main pass, fragment stage: the lit colour (per pixel, or interpolated from the vertices with
// VERTEX_LIGHTING), written straight as BT.601 limited-range YUV at full resolution: luma to
// target 0 (R8), chroma to target 1 (RG8). The encoder's planes need no RGB conversion pass;
// only the chroma is averaged down to 4:2:0 afterwards (see host/renderer.py).
// Variants (#defines) as in mesh.vert.glsl, plus ALPHA_MASK (discard below the cutoff) and
// ALPHA_BLEND (the material's alpha is written for blending; otherwise it is ignored), and
// POINTS (a point cloud: unlit, each point a square of u_point_size pixels).
uniform float u_alpha;          // < 1 for see-through entities (blending YUV = blending RGB:
                                // the conversion is affine and the blend weights sum to 1)
uniform float u_alpha_cutoff;
uniform float u_normal_scale;
uniform float u_occlusion_strength;

#if defined(VERTEX_LIGHTING) && !defined(PIXEL_LIGHTS)
in vec3 v_color;
uniform vec4 u_base_color;  // for its alpha (lighting.glsl, in the vertex stage, declares it)
#elif defined(VERTEX_LIGHTING)
in vec3 v_linear;
in vec3 v_world;
in vec3 v_normal;
#else
in vec3 v_world;
in vec3 v_normal;
#endif
#ifdef VERTEX_COLOR
in vec4 v_vcolor;
#endif
#ifdef BASE_TEX
uniform sampler2D u_tex_base;       // sRGB texture: sampling returns linear colour
in vec2 v_uv_base;
#endif
#ifdef MR_TEX
uniform sampler2D u_tex_mr;         // linear: G roughness, B metallic
in vec2 v_uv_mr;
#endif
#ifdef NORMAL_TEX
uniform sampler2D u_tex_normal;     // linear, tangent space
in vec2 v_uv_normal;
in vec4 v_tangent;
#endif
#ifdef OCCLUSION_TEX
uniform sampler2D u_tex_occlusion;  // linear, R
in vec2 v_uv_occlusion;
#endif
#ifdef EMISSIVE_TEX
uniform sampler2D u_tex_emissive;   // sRGB
in vec2 v_uv_emissive;
#endif

layout(location = 0) out vec4 frag_luma;    // Y in .r (alpha for blending)
layout(location = 1) out vec4 frag_chroma;  // U, V in .rg

void main() {
    vec4 base = u_base_color;
#ifdef VERTEX_COLOR
    base *= v_vcolor;
#endif
#ifdef BASE_TEX
    base *= texture(u_tex_base, v_uv_base);
#endif
    float alpha = 1.0;
#ifdef ALPHA_MASK
    if (base.a < u_alpha_cutoff) discard;
#endif
#ifdef ALPHA_BLEND
    alpha = base.a;
#endif
#if defined(POINTS)
    // point clouds are unlit: the base (and vertex) colour, tinted, gamma 2.2
    vec3 c = mix(base.rgb, u_tint.rgb, u_tint.a) + u_emissive;
    vec3 display = min(exp2(log2(max(c, vec3(1e-6))) * (1.0 / 2.2)), vec3(1.0));
#elif defined(VERTEX_LIGHTING) && !defined(PIXEL_LIGHTS)
    vec3 display = v_color;
#elif defined(VERTEX_LIGHTING)
    Surface s = surface(base.rgb, u_metallic, u_roughness);
    vec3 n = normalize(v_normal) * facing(v_world, v_normal);
    vec3 display = finish(v_linear + punctual(v_world, n, normalize(u_camera - v_world), s), s,
                          u_emissive);
#else
    float metallic = u_metallic;
    float roughness = u_roughness;
#ifdef MR_TEX
    vec4 mr = texture(u_tex_mr, v_uv_mr);
    roughness *= mr.g;
    metallic *= mr.b;
#endif
    float side = facing(v_world, v_normal);
    vec3 n = normalize(v_normal);
#ifdef NORMAL_TEX
    vec3 t = v_tangent.xyz - n * dot(n, v_tangent.xyz);
    t = dot(t, t) > 1e-12 ? normalize(t) : vec3(0.0);
    vec3 b = cross(n, t) * v_tangent.w;
    vec4 sampled = texture(u_tex_normal, v_uv_normal);
    vec3 tn = sampled.xyz * 2.0 - 1.0;
    if (sampled.a == 0.0)  // a two-channel (BC5) normal map: z from x and y
        tn.z = sqrt(max(0.0, 1.0 - dot(tn.xy, tn.xy)));
    tn.xy *= u_normal_scale;
    n = normalize(mat3(t, b, n) * tn);
#endif
    // seen from behind, the whole tangent frame turns (glTF's double-sided rule)
    n *= side;
    float ao = 1.0;
#ifdef OCCLUSION_TEX
    ao = 1.0 + u_occlusion_strength * (texture(u_tex_occlusion, v_uv_occlusion).r - 1.0);
#endif
    vec3 emissive = u_emissive;
#ifdef EMISSIVE_TEX
    emissive *= texture(u_tex_emissive, v_uv_emissive).rgb;
#endif
    vec3 display = shade(v_world, n, base.rgb, metallic, roughness, ao, emissive);
#endif
    alpha *= u_alpha;
    frag_luma = vec4((16.0 + dot(display, vec3(65.481, 128.553, 24.966))) / 255.0, 0.0, 0.0, alpha);
    frag_chroma = vec4((128.0 + dot(display, vec3(-37.797, -74.203, 112.0))) / 255.0,
                       (128.0 + dot(display, vec3(112.0, -93.786, -18.214))) / 255.0, 0.0, alpha);
}
