"""pytest runs every notebook here headless (nbval, ``pyproject.toml``) on the seconds-long ``ci`` preset: the
notebooks open on ``quick`` for a reader, and ``pwslib.experiments.notebook.setup`` takes
``PWSLIB_NOTEBOOK_PRESET`` over the parameters cell. It is set around each notebook cell only (the kernel, started before a notebook's first cell,
inherits it), so no other test sees it."""

import os

import pytest

from pwslib.experiments.notebook import PRESET_VARIABLE


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    os.environ[PRESET_VARIABLE] = "ci"


def pytest_runtest_teardown(item):
    os.environ.pop(PRESET_VARIABLE, None)
