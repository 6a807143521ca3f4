#version 330 core
// Selection outline colour (cut planes clip it in the vertex stage, like the mesh).
uniform vec4 u_color;

out vec4 frag_color;

void main() {
    frag_color = u_color;
}
