"""Fixtures of the conversion tests: a real service with two accounts (tests/faults)."""

from tests.faults.conftest import accounts_service  # noqa: F401 (a fixture, used by name)
