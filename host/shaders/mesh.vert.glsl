#version 330 core
// Main pass: world-space position and normal for the lighting in mesh.frag.glsl.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;

uniform mat4 u_model;
uniform mat3 u_normal_matrix;  // inverse-transpose of the model's 3x3, so scaled parts light right
uniform mat4 u_view_proj;

out vec3 v_world;
out vec3 v_normal;

void main() {
    vec4 world = u_model * vec4(a_position, 1.0);
    v_world = world.xyz;
    v_normal = u_normal_matrix * a_normal;
    gl_Position = u_view_proj * world;
}
