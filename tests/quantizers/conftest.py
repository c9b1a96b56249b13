"""Fixtures of the quantizer tests: `gradients`, the per-backend `value_and_gradients` of tests/gradients.py."""

import pytest

from tests.gradients import value_and_gradients


@pytest.fixture
def gradients():
    """`value_and_gradients` on the running backend."""
    return value_and_gradients
