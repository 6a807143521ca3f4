#version 330 core
// Main pass, fragment stage: the lit colour (per pixel, or interpolated from the vertices with
// VERTEX_LIGHTING), written straight as BT.601 limited-range YUV at full resolution: luma to
// target 0 (R8), chroma to target 1 (RG8). The encoder's planes need no RGB conversion pass;
// only the chroma is averaged down to 4:2:0 afterwards (see host/renderer.py).
uniform float u_alpha;          // < 1 for see-through entities (blending YUV = blending RGB:
                                // the conversion is affine and the blend weights sum to 1)

#ifdef VERTEX_LIGHTING
in vec3 v_color;
#else
in vec3 v_world;
in vec3 v_normal;
#endif
#ifdef TEXTURED
uniform sampler2D u_base_color_tex;  // sRGB texture: sampling returns linear colour
in vec2 v_texcoord;
#endif

layout(location = 0) out vec4 frag_luma;    // Y in .r (alpha for blending)
layout(location = 1) out vec4 frag_chroma;  // U, V in .rg

void main() {
#if defined(VERTEX_LIGHTING)
    vec3 display = v_color;
#elif defined(TEXTURED)
    vec3 display = shade(v_world, v_normal,
                         u_base_color.rgb * texture(u_base_color_tex, v_texcoord).rgb);
#else
    vec3 display = shade(v_world, v_normal, u_base_color.rgb);
#endif
    frag_luma = vec4((16.0 + dot(display, vec3(65.481, 128.553, 24.966))) / 255.0, 0.0, 0.0, u_alpha);
    frag_chroma = vec4((128.0 + dot(display, vec3(-37.797, -74.203, 112.0))) / 255.0,
                       (128.0 + dot(display, vec3(112.0, -93.786, -18.214))) / 255.0, 0.0, u_alpha);
}
