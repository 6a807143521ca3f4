#version 330 core
// Main pass: a key directional light + a fill light + hemisphere ambient, with a
// metallic-roughness Blinn-Phong approximation (enough to read shape and material, cheap on
// llvmpipe). Lighting is computed in linear space and written gamma-encoded (sRGB approx.).
in vec3 v_world;
in vec3 v_normal;

uniform vec3 u_camera;          // camera position (world)
uniform vec4 u_base_color;      // linear RGBA
uniform float u_metallic;
uniform float u_roughness;
uniform vec4 u_tint;            // rgb, weight (0 = no tint)
uniform float u_alpha;          // < 1 for see-through entities
uniform vec3 u_key_dir;         // direction light travels, unit
uniform vec3 u_key_color;       // colour * intensity
uniform vec3 u_fill_dir;
uniform float u_fill;
uniform float u_ambient;

out vec4 frag_color;

vec3 light(vec3 n, vec3 v, vec3 l, vec3 radiance, vec3 diffuse, vec3 f0, float shininess) {
    float ndl = max(dot(n, l), 0.0);
    vec3 h = normalize(l + v);
    float spec = pow(max(dot(n, h), 0.0), shininess) * (shininess + 8.0) / 25.13274;
    return radiance * ndl * (diffuse / 3.14159265 + f0 * spec);
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 v = normalize(u_camera - v_world);
    if (dot(n, v) < 0.0) n = -n;  // two-sided lighting: open or single-sided parts stay lit
    vec3 base = mix(u_base_color.rgb, u_tint.rgb, u_tint.a);
    vec3 diffuse = base * (1.0 - u_metallic);
    vec3 f0 = mix(vec3(0.04), base, u_metallic);
    float r = clamp(u_roughness, 0.04, 1.0);
    float shininess = clamp(2.0 / (r * r * r * r) - 2.0, 1.0, 2048.0);
    vec3 c = light(n, v, -u_key_dir, u_key_color, diffuse, f0, shininess);
    c += light(n, v, -u_fill_dir, vec3(u_fill), diffuse, f0, shininess);
    // Hemisphere ambient: brighter from above; metals get some of it as a fake reflection.
    float sky = 0.5 + 0.5 * n.y;
    c += u_ambient * mix(0.45, 1.0, sky) * (diffuse + f0 * 0.6);
    c = c / (1.0 + c * 0.15);  // soft shoulder so the key light does not clip
    frag_color = vec4(pow(c, vec3(1.0 / 2.2)), u_alpha);
}
