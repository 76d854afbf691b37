"""The examples in the public docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import wengert

MODULES = sorted(m.name for m in pkgutil.walk_packages(wengert.__path__, "wengert."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
