// Shared by mesh.vert.glsl and mesh.frag.glsl (the renderer prepends it to whichever stage
// lights: the vertex stage with VERTEX_LIGHTING, else the fragment stage).
// A key directional light (diffuse + specular), a diffuse fill light and a hemisphere ambient,
// with a metallic-roughness Blinn-Phong approximation: enough to read shape and material.
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

const float INV_PI = 0.31830989;

// Two-sided lighting: the normal of a face seen from behind is turned towards the viewer, so
// open or double-sided parts stay lit.
float facing(vec3 world, vec3 normal) {
    return dot(normal, u_camera - world) < 0.0 ? -1.0 : 1.0;
}

// n: unit normal facing the viewer; ao: ambient occlusion (1 = none).
vec3 shade(vec3 world, vec3 n, vec3 base_color, float metallic, float roughness, float ao,
           vec3 emissive) {
    vec3 v = normalize(u_camera - world);
    vec3 base = mix(base_color, u_tint.rgb, u_tint.a);
    vec3 diffuse = base * (1.0 - metallic) * INV_PI;
    vec3 f0 = mix(vec3(0.04), base, metallic);
    float r = clamp(roughness, 0.04, 1.0);
    float r2 = r * r;
    float shininess = clamp(2.0 / (r2 * r2) - 2.0, 1.0, 2048.0);
    vec3 l = -u_key_dir;
    float ndl = max(dot(n, l), 0.0);
    float ndh = max(dot(n, normalize(l + v)), 1e-6);
    float spec = exp2(shininess * log2(ndh)) * (shininess + 8.0) * 0.03978874;  // /(8 pi)
    vec3 c = u_key_color * ndl * (diffuse + f0 * spec);
    c += u_fill * max(dot(n, -u_fill_dir), 0.0) * diffuse;
    // Hemisphere ambient: brighter from above; metals get some of it as a fake reflection.
    c += ao * u_ambient * (0.725 + 0.275 * n.y) * (diffuse * 3.14159265 + f0 * 0.6);
    c = c / (1.0 + c * 0.15);  // soft shoulder so the key light does not clip
    c = mix(c, base, u_unlit) + emissive;
    return min(exp2(log2(max(c, vec3(1e-6))) * (1.0 / 2.2)), vec3(1.0));
}
