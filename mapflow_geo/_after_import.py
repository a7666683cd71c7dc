"""Run a function right after a module is imported, or now if it already is.

``when_imported("pandas", register)`` calls ``register()`` at once when pandas is in
``sys.modules``, and otherwise the moment pandas finishes importing (a one-shot finder
at the front of ``sys.meta_path`` that wraps the module's own loader, then steps aside).
Nothing happens when the module is not installed. The doors register ``gdf.mapflow``
and ``da.mapflow`` this way, so ``import mapflow_geo`` imports neither pandas nor
xarray and the accessors work whichever the user imports first.

Like ``exceptions.py``, this module imports nothing of the package.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Callable


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps ``name``'s loader so ``callback`` runs right after the
    module's own code, then leaves ``sys.meta_path``."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, D401
        if name != self.name:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        callback = self.callback

        def exec_then_call(module):  # noqa: ANN001, ANN202
            exec_module(module)
            try:
                callback()
            except Exception as exc:  # noqa: BLE001 - never break the user's import
                warnings.warn(f"mapflow-geo: after importing {name}: {exc!r}", stacklevel=2)

        spec.loader.exec_module = exec_then_call  # type: ignore[method-assign]
        return spec


def _same(finder: object, name: str, callback: Callable[[], None]) -> bool:
    def key(f: Callable[[], None]) -> tuple:
        return getattr(f, "__module__", None), getattr(f, "__qualname__", None)

    return (
        isinstance(finder, _AfterImport)
        and finder.name == name
        and key(finder.callback) == key(callback)
    )


def when_imported(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback()`` now if module ``name`` is imported, else right after it is."""
    if name in sys.modules:
        callback()
        return
    if any(_same(f, name, callback) for f in sys.meta_path):  # a reloaded module
        return
    if importlib.util.find_spec(name) is None:
        return
    sys.meta_path.insert(0, _AfterImport(name, callback))


__all__ = ["when_imported"]
