// Shared by mesh.vert.glsl and mesh.frag.glsl (the renderer prepends it to whichever stage
// lights: the vertex stage with VERTEX_LIGHTING, else the fragment stage).
// A key directional light (diffuse + specular), a diffuse fill light, up to 8 point, spot and
// directional lights (KHR_lights_punctual's falloff), and either image-based lighting from a
// pre-filtered environment (host/environment.py: spherical-harmonic irradiance, a roughness
// mip chain, and an analytic split-sum BRDF) or a hemisphere ambient. Specular is a
// metallic-roughness Blinn-Phong approximation: enough to read shape and material.
// Computed in linear space, returned gamma-encoded (gamma 2.2) and clamped as stored.
uniform vec3 u_camera;          // camera position (world)
uniform vec4 u_base_color;      // linear RGBA (times any texture and vertex colour)
uniform float u_metallic;
uniform float u_roughness;
uniform vec3 u_emissive;        // linear, added after lighting (times any emissive texture)
uniform float u_unlit;          // 1: KHR_materials_unlit, the base colour as it is
uniform vec4 u_tint;            // rgb, weight (0 = no tint)
uniform vec3 u_key_dir;         // direction light travels, unit
uniform vec3 u_key_color;       // colour * intensity
uniform vec3 u_fill_dir;
uniform float u_fill;
uniform float u_ambient;
uniform int u_light_count;
uniform vec4 u_light_pos[8];    // xyz position; w: 0 directional, 1 point, 2 spot
uniform vec4 u_light_dir[8];    // xyz direction travelled (unit); w: 1 / range² (0: none)
uniform vec3 u_light_color[8];  // colour × intensity
uniform vec2 u_light_cone[8];   // spot: cos(outer), 1 / (cos(inner) - cos(outer))
uniform float u_env;            // environment intensity (with ENVIRONMENT; else hemisphere)
uniform vec3 u_sh[9];           // the environment's irradiance (cosine-convolved SH)
uniform sampler2D u_env_tex;    // equirectangular radiance, mip level = roughness * 4

const float INV_PI = 0.31830989;

// Two-sided lighting: the normal of a face seen from behind is turned towards the viewer, so
// open or double-sided parts stay lit.
float facing(vec3 world, vec3 normal) {
    return dot(normal, u_camera - world) < 0.0 ? -1.0 : 1.0;
}

vec3 irradiance(vec3 n) {
    return u_sh[0] * 0.282095
        + (u_sh[1] * n.y + u_sh[2] * n.z + u_sh[3] * n.x) * 0.488603
        + (u_sh[4] * (n.x * n.y) + u_sh[5] * (n.y * n.z) + u_sh[7] * (n.x * n.z)) * 1.092548
        + u_sh[6] * (0.315392 * (3.0 * n.z * n.z - 1.0))
        + u_sh[8] * (0.546274 * (n.x * n.x - n.y * n.y));
}

vec2 equirect(vec3 d) {
    return vec2(atan(d.x, -d.z) * 0.15915494 + 0.5, acos(clamp(d.y, -1.0, 1.0)) * INV_PI);
}

// The split-sum BRDF's scale and bias for f0, fitted analytically (Karis, "Physically Based
// Shading on Mobile"): no lookup texture.
vec2 env_brdf(float roughness, float ndv) {
    vec4 r = roughness * vec4(-1.0, -0.0275, -0.572, 0.022) + vec4(1.0, 0.0425, 1.04, -0.04);
    float a004 = min(r.x * r.x, exp2(-9.28 * ndv)) * r.x + r.y;
    return vec2(-1.04, 1.04) * a004 + r.zw;
}

vec3 direct(vec3 n, vec3 v, vec3 l, vec3 radiance, vec3 diffuse, vec3 f0, float shininess) {
    float ndl = max(dot(n, l), 0.0);
    float ndh = max(dot(n, normalize(l + v)), 1e-6);
    float spec = exp2(shininess * log2(ndh)) * (shininess + 8.0) * 0.03978874;  // /(8 pi)
    return radiance * ndl * (diffuse + f0 * spec);
}

struct Surface {
    vec3 base;      // base colour, tinted
    vec3 diffuse;   // Lambert albedo / pi
    vec3 f0;        // specular reflectance at normal incidence
    float r;        // roughness, clamped
    float shininess;
};

Surface surface(vec3 base_color, float metallic, float roughness) {
    Surface s;
    s.base = mix(base_color, u_tint.rgb, u_tint.a);
    s.diffuse = s.base * (1.0 - metallic) * INV_PI;
    s.f0 = mix(vec3(0.04), s.base, metallic);
    s.r = clamp(roughness, 0.04, 1.0);
    float r2 = s.r * s.r;
    s.shininess = clamp(2.0 / (r2 * r2) - 2.0, 1.0, 2048.0);
    return s;
}

// The point, spot and directional lights (linear); none unless LIGHTS is defined (compiled in
// only for scenes that have some: on llvmpipe even an empty loop costs).
vec3 punctual(vec3 world, vec3 n, vec3 v, Surface s) {
    vec3 c = vec3(0.0);
#ifdef LIGHTS
    for (int i = 0; i < u_light_count; ++i) {
        vec4 pos = u_light_pos[i];
        vec3 l = -u_light_dir[i].xyz;
        float att = 1.0;
        if (pos.w > 0.5) {  // point or spot: inverse square, ended smoothly at the range
            vec3 to = pos.xyz - world;
            float d2 = max(dot(to, to), 1e-8);
            l = to * inversesqrt(d2);
            float q = d2 * u_light_dir[i].w;
            att = (u_light_dir[i].w > 0.0 ? clamp(1.0 - q * q, 0.0, 1.0) : 1.0) / d2;
            if (pos.w > 1.5) {
                float t = clamp((dot(u_light_dir[i].xyz, -l) - u_light_cone[i].x)
                                * u_light_cone[i].y, 0.0, 1.0);
                att *= t * t;
            }
        }
        c += direct(n, v, l, u_light_color[i] * att, s.diffuse, s.f0, s.shininess);
    }
#endif
    return c;
}

// Key and fill lights and the environment (or hemisphere ambient), linear. n: unit normal
// facing the viewer; ao: ambient occlusion (1 = none).
vec3 ambient_and_key(vec3 world, vec3 n, vec3 v, Surface s, float ao) {
    vec3 c = direct(n, v, -u_key_dir, u_key_color, s.diffuse, s.f0, s.shininess);
    c += u_fill * max(dot(n, -u_fill_dir), 0.0) * s.diffuse;
#ifdef ENVIRONMENT
    {
        vec2 ab = env_brdf(s.r, max(dot(n, v), 0.0));
        vec3 reflected = textureLod(u_env_tex, equirect(reflect(-v, n)), s.r * 4.0).rgb;
        c += ao * u_env * (s.diffuse * irradiance(n) + reflected * (s.f0 * ab.x + ab.y));
    }
#else
    // Hemisphere ambient: brighter from above; metals get some of it as a fake reflection.
    c += ao * u_ambient * (0.725 + 0.275 * n.y) * (s.diffuse * 3.14159265 + s.f0 * 0.6);
#endif
    return c;
}

// Linear light to the display colour: a soft shoulder so the key light does not clip, unlit
// materials' base colour as it is, emissive added, gamma 2.2, clamped.
vec3 finish(vec3 c, Surface s, vec3 emissive) {
    c = c / (1.0 + c * 0.15);
    c = mix(c, s.base, u_unlit) + emissive;
    return min(exp2(log2(max(c, vec3(1e-6))) * (1.0 / 2.2)), vec3(1.0));
}

vec3 shade(vec3 world, vec3 n, vec3 base_color, float metallic, float roughness, float ao,
           vec3 emissive) {
    vec3 v = normalize(u_camera - world);
    Surface s = surface(base_color, metallic, roughness);
    return finish(ambient_and_key(world, n, v, s, ao) + punctual(world, n, v, s), s, emissive);
}
