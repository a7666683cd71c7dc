"""Griffe extension for the docs build: Sphinx cross-reference roles in docstrings
(``:func:`~mapflow_geo.aoi.prepare_aois```, ``:class:`AOIWarning```) become
mkdocs-autorefs links, so the package's numpydoc docstrings need no Markdown-only syntax.

Targets are resolved like Sphinx does: as written, then relative to the object and its
parents. An unresolved target (an outside library) is rendered as code; references are
emitted as *optional* autorefs, so a target that is not rendered is no build warning.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|mod|attr|exc|data|obj|const):`(~?)([\w.]+)(?:\(\))?`"
)


def _lookup(root: griffe.Object, path: str) -> griffe.Object | None:
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    obj: Any = root
    for part in parts[1:]:
        try:
            obj = obj.members[part]
        except (KeyError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    if obj.is_alias:  # a re-export: link to where it is documented
        try:
            return obj.final_target
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._root = pkg
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(lambda m: self._link(obj, m), obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)

    def _resolve(self, obj: griffe.Object, target: str) -> str | None:
        scopes: list[str] = [""]
        scope: Any = obj
        while scope is not None:
            scopes.append(scope.path + ".")
            scope = scope.parent
        for prefix in scopes:
            found = _lookup(self._root, prefix + target)
            if found is not None:
                return found.path
        return None

    def _link(self, obj: griffe.Object, m: re.Match) -> str:
        short, target = m.group(1) == "~", m.group(2)
        title = target.rsplit(".", 1)[-1] if short else target
        path = self._resolve(obj, target)
        if path is None:
            return f"`{title}`"
        return (
            f'<autoref identifier="{html.escape(path)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )
