#version 330 core
// Selection outline colour; cut planes remove the outline of cut geometry too.
in vec3 v_world;

uniform vec4 u_color;
uniform int u_cut_count;
uniform vec4 u_cut_planes[8];  // a, b, c, d: a*x + b*y + c*z + d > 0 is cut away

out vec4 frag_color;

void main() {
    for (int i = 0; i < u_cut_count; ++i) {
        if (dot(u_cut_planes[i].xyz, v_world) + u_cut_planes[i].w > 0.0) discard;
    }
    frag_color = u_color;
}
