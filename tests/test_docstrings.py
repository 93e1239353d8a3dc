"""Every example in the public docstrings runs and prints what it shows."""

import doctest

import pytest

import csoftmax
from csoftmax import _config, callbacks, functional, model, optim, plot, recipes, trainer

MODULES = [csoftmax, functional, _config, model, optim, trainer, callbacks, plot, recipes]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0


def test_every_public_function_has_an_example():
    for name in csoftmax.__all__:
        obj = getattr(csoftmax, name)
        if callable(obj):
            assert ">>>" in (obj.__doc__ or ""), f"csoftmax.{name} has no example"
