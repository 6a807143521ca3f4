"""Fixtures of the conversion tests: a real service with two accounts (tests/faults), and an
EGL context for drawing a converted model (tests/host)."""

from tests.faults.conftest import accounts_service  # noqa: F401 (a fixture, used by name)
from tests.host.conftest import egl_context  # noqa: F401 (a fixture, used by name)
