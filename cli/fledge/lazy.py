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
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass
class _Loading:
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: int | None = None  # the thread running the module's code


_LOADING: dict[str, _Loading] = {}


class _Deferred(ModuleType):
    """A module whose code has not run yet. The first access to an attribute it
    lacks runs it, in this same module object (which is what sys.modules and its
    importers hold) and once: other threads wait for it."""

    def __getattr__(self, attr: str) -> Any:
        loading = _LOADING[self.__name__]
        if loading.thread != threading.get_ident():  # not from the module's own code
            with loading.lock:
                if type(self) is _Deferred:
                    loading.thread = threading.get_ident()
                    try:
                        assert self.__spec__ is not None and self.__spec__.loader is not None
                        self.__spec__.loader.exec_module(self)
                    finally:
                        loading.thread = None
                    self.__class__ = ModuleType  # type: ignore[assignment]  # loaded
        return ModuleType.__getattribute__(self, attr)


def lazy(name: str) -> ModuleType:
    """``name``, whose code runs at the first access to one of its attributes.

    The module is found now (by the import system as it is now), run later.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    _LOADING[name] = _Loading()
    module.__class__ = _Deferred
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as `import a.b` does: a.b is an attribute of a
        setattr(sys.modules[parent], child, module)
    return module
