"""The fast path: pairs of identical or near-identical outlines, whose overlap is known
without an overlay (``DESIGN.md``, *Change detection*, Speed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

if TYPE_CHECKING:
    from mapflow_geo.results.changes._objects import Objects

#: Outlines whose vertices round to the same points of this grid (degrees, ~1 cm) are
#: the same outline.
GRID_DEG = 1e-7


def same_outlines(b: Objects, a: Objects, i: np.ndarray, j: np.ndarray):
    """Of the candidate pairs (before ``i``, after ``j``): which have the same outline
    (vertex for vertex on the grid), and which of those are identical. Only pairs whose
    areas agree closely are looked at."""
    same = np.zeros(len(i), bool)
    exact = np.zeros(len(i), bool)
    bb = b.bounds[i]
    # a filter, not the test: outlines this close differ in area by far less
    near = GRID_DEG * ((bb[:, 2] - bb[:, 0]) + (bb[:, 3] - bb[:, 1]))
    c = np.flatnonzero(np.abs(b.area_deg[i] - a.area_deg[j]) <= near)
    c = c[b.simple[i[c]] & a.simple[j[c]]]
    if not len(c):
        return same, exact
    gb, ga = b.geoms[i[c]], a.geoms[j[c]]
    ident = shapely.equals_identical(gb, ga)
    exact[c[ident]] = same[c[ident]] = True
    rest = np.flatnonzero(~ident)
    rest = rest[shapely.get_num_coordinates(gb[rest]) == shapely.get_num_coordinates(ga[rest])]
    if len(rest):
        qb, owner = _on_grid(gb[rest])
        qa, _ = _on_grid(ga[rest])
        differ = np.bincount(owner, weights=(qb != qa).any(axis=1), minlength=len(rest))
        same[c[rest[differ == 0]]] = True
    return same, exact


def _on_grid(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    return np.rint(xy / GRID_DEG), owner
