"""farview desktop viewer: GLFW window, YUV shader, camera controls."""
