#version 330 core
// Selection outline colour as BT.601 limited-range Y, U, V (the main pass's targets, see
// mesh.frag.glsl) and alpha; cut planes clip it in the vertex stage, like the mesh.
uniform vec4 u_yuva;

layout(location = 0) out vec4 frag_luma;
layout(location = 1) out vec4 frag_chroma;

void main() {
    frag_luma = vec4(u_yuva.x, 0.0, 0.0, u_yuva.a);
    frag_chroma = vec4(u_yuva.yz, 0.0, u_yuva.a);
}
