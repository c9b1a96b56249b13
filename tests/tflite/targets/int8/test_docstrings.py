"""The runnable examples in the int8 target's docstrings run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import keras_bnn.tflite.targets.int8 as int8

MODULES = ["keras_bnn.tflite.targets.int8"] + [f"keras_bnn.tflite.targets.int8.{m.name}" for m in pkgutil.iter_modules(int8.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
