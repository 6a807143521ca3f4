#version 330 core
// Selection outline colour (cut planes clip it in the vertex stage, like the mesh), and its
// luma for the Y target (see mesh.frag.glsl).
uniform vec4 u_color;
uniform float u_luma;

layout(location = 0) out vec4 frag_color;
layout(location = 1) out vec4 frag_luma;

void main() {
    frag_color = u_color;
    frag_luma = vec4(u_luma, 0.0, 0.0, u_color.a);
}
