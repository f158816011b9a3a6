"""Modules imported when first used, so that `fledge --help` and the light
commands do not pay for paramiko, docker, cryptography, Ansible or Flower.

A command module names what it uses once, typed for mypy::

    if TYPE_CHECKING:
        from fledge import control
    else:
        control = lazy("fledge.control")

and ``control.superlink(...)`` imports fledge.control then. tests/unit/test_startup.py
keeps the heavy libraries out of `fledge --help`.

Not importlib's LazyLoader: on Python 3.11 it is not thread-safe, and fledge
reaches hosts from threads (a second thread saw a half-run module).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    """Stands in for a module until one of its attributes is asked for; then runs it,
    once (a lock for all threads), and answers from it."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__dict__["_fledge_spec"] = spec
        self.__dict__["_fledge_lock"] = threading.Lock()
        self.__dict__["_fledge_module"] = None

    def __getattr__(self, attr: str) -> Any:  # only for attributes a module would have
        return getattr(self._fledge_load(), attr)

    def _fledge_load(self) -> ModuleType:
        with self._fledge_lock:
            if self._fledge_module is None:
                spec: ModuleSpec = self._fledge_spec
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module  # as an import does, for its own imports
                try:
                    assert spec.loader is not None
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules[spec.name] = self
                    raise
                self.__dict__["_fledge_module"] = module
            return self._fledge_module


def lazy(name: str) -> ModuleType:
    """``name``, whose code runs at the first access to one of its attributes.

    The module is found now (by the import system as it is now), run later.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = _Deferred(spec)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as `import a.b` does: a.b is an attribute of a
        setattr(sys.modules[parent], child, module)
    return module
