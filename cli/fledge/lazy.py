"""Modules imported when first used, so that `fledge --help` and the light
commands do not pay for paramiko, docker, cryptography, Ansible or Flower.

A command module names what it uses once, typed for mypy::

    if TYPE_CHECKING:
        from fledge import control
    else:
        control = lazy("fledge.control")

and ``control.superlink(...)`` imports fledge.control then. tests/unit/test_startup.py
keeps the heavy libraries out of `fledge --help`.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy(name: str) -> ModuleType:
    """``name``, whose code runs at the first access to one of its attributes."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as `import a.b` does: a.b is an attribute of a
        setattr(sys.modules[parent], child, module)
    return module
