"""The change rule: link, fragments, compare (``DESIGN.md``, *Change detection*).

:func:`match_groups` links the objects of two sides into groups and sums them;
:func:`classify` gives each group its change.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import shapely

from mapflow_geo._geodesy import m2_per_deg2, metres_per_degree
from mapflow_geo.results.changes._identical import same_outlines
from mapflow_geo.results.changes._objects import Objects, envelopes, to_local
from mapflow_geo.results.changes._overlay import intersection_areas
from mapflow_geo.results.stitch import components, union_by_group

#: Change codes, in the order of :data:`~mapflow_geo.results.changes.CHANGES`.
NEW, REMOVED, MODIFIED, UNCHANGED = range(4)


@dataclasses.dataclass(frozen=True)
class ChangeRule:
    """The thresholds of the change rule (see the module docstring).

    Attributes
    ----------
    min_overlap : float
        A before and an after object are linked when their intersection is at least
        this share of the smaller one.
    min_iou : float
        A group whose intersection over union, measured with ``tolerance_m``, is below
        this (and whose parts outside the other side exceed ``area_change_m2``) is
        modified.
    tolerance_m : float
        Outlines within this distance (m) of each other are the same outline; only
        change beyond it counts.
    area_change : float
        A group is modified when its area changed by more than this share …
    area_change_m2 : float
        … and by more than this many m² (and more than this lies beyond the tolerance);
        also the size of a fragment, and of a side that counts as nothing.
    """

    min_overlap: float = 0.5
    min_iou: float = 0.8
    tolerance_m: float = 1.0
    area_change: float = 0.10
    area_change_m2: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_overlap <= 1.0:
            raise ValueError(f"min_overlap must be in (0, 1], not {self.min_overlap!r}")
        if not 0.0 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], not {self.min_iou!r}")
        for name in ("tolerance_m", "area_change", "area_change_m2"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)!r}")


@dataclasses.dataclass
class Groups:
    """The groups of one window: a label per before and after object and per-group sums."""

    label_b: np.ndarray
    label_a: np.ndarray
    n_before: np.ndarray
    n_after: np.ndarray
    area_before: np.ndarray
    area_after: np.ndarray
    inter: np.ndarray
    #: (group, object position) pairs: groups whose making looked at an object of the
    #: other side that is not theirs (a fragment's neighbours), per side
    deps_b: np.ndarray
    deps_a: np.ndarray

    def __len__(self) -> int:
        return len(self.n_before)


def _type_codes(b: Objects, a: Objects) -> tuple[np.ndarray, np.ndarray]:
    (cb, ub), (ca, ua) = (pd.factorize(o.props["object_type"]) for o in (b, a))
    both = pd.Index(ub).append(pd.Index(ua)).unique()  # missing types: -1 on both sides
    return (
        np.where(cb >= 0, both.get_indexer(ub)[np.maximum(cb, 0)] if len(ub) else -1, -1),
        np.where(ca >= 0, both.get_indexer(ua)[np.maximum(ca, 0)] if len(ua) else -1, -1),
    )


def match_groups(b: Objects, a: Objects, rule: ChangeRule) -> Groups:
    """Link the objects of the two sides (the rule's step 1) and sum each group."""
    nb, na = len(b), len(a)
    tree = shapely.STRtree(a.geoms) if nb and na else None
    tb, ta = _type_codes(b, a)
    if tree is not None:
        i, j = tree.query(b.geoms)
        same = tb[i] == ta[j]
        i, j = i[same], j[same]
    else:
        i = j = np.zeros(0, np.intp)
    small = np.minimum(b.area_deg[i], a.area_deg[j])
    # the fast path: the same outline at both dates overlaps itself, no overlay needed
    same, exact = same_outlines(b, a, i, j)
    inter = np.where(exact, b.area_deg[i], np.where(same, small, 0.0))
    maybe = ~same & (_envelope_overlap(b, a, i, j) >= rule.min_overlap * small)
    inter[maybe] = intersection_areas(b, a, i[maybe], j[maybe])
    maybe |= same
    link = maybe & (inter > 0) & (inter >= rule.min_overlap * small)
    fi, fj, (near_a, near_b) = _fragments(b, a, i[link], j[link], tree, (tb, ta), rule)
    li, lj = np.r_[i[link], fi], np.r_[j[link], fj]
    linked_b, linked_a = np.zeros(nb, bool), np.zeros(na, bool)
    linked_b[li], linked_a[lj] = True, True
    pb, qb = _pieces(b, ~linked_b, tb, rule)
    pa, qa = _pieces(a, ~linked_a, ta, rule)
    rows = np.r_[li, pb[0], nb + pa[0]]
    cols = np.r_[nb + lj, pb[1], nb + pa[1]]
    label = components(nb + na, rows, cols)
    label_b, label_a = label[:nb], label[nb:]
    # envelope pairs the first test skipped whose objects ended up in one group anyway
    late = ~maybe & (label_b[i] == label_a[j])
    if late.any():
        inter[late] = intersection_areas(b, a, i[late], j[late])
    inside = label_b[i] == label_a[j]
    g = int(label.max()) + 1 if len(label) else 0
    inter_m2 = inter[inside] * m2_per_deg2(b.lat[i[inside]])
    return Groups(
        label_b,
        label_a,
        np.bincount(label_b, minlength=g),
        np.bincount(label_a, minlength=g),
        np.bincount(label_b, weights=b.area_m2, minlength=g),
        np.bincount(label_a, weights=a.area_m2, minlength=g),
        np.bincount(label_b[i[inside]], weights=inter_m2, minlength=g),
        # a fragment's or a piece's group looked at its neighbours, and theirs at it
        np.r_[
            np.column_stack([label_a[near_a[0]], near_a[1]]),
            np.column_stack([label_a[near_b[1]], near_b[0]]),
            np.column_stack([label_b[qb[0]], qb[1]]),
            np.column_stack([label_b[qb[1]], qb[0]]),
        ],
        np.r_[
            np.column_stack([label_b[near_b[0]], near_b[1]]),
            np.column_stack([label_b[near_a[1]], near_a[0]]),
            np.column_stack([label_a[qa[0]], qa[1]]),
            np.column_stack([label_a[qa[1]], qa[0]]),
        ],
    )


def _envelope_overlap(b: Objects, a: Objects, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The area (degrees²) common to the envelopes of the pairs: a bound of theirs."""
    bi, bj = b.bounds[i], a.bounds[j]
    wx = np.minimum(bi[:, 2], bj[:, 2]) - np.maximum(bi[:, 0], bj[:, 0])
    wy = np.minimum(bi[:, 3], bj[:, 3]) - np.maximum(bi[:, 1], bj[:, 1])
    return np.clip(wx, 0, None) * np.clip(wy, 0, None)


def _pieces(objs: Objects, lone: np.ndarray, types: np.ndarray, rule: ChangeRule):
    """Same-side links for pieces (the rule's step 2, second half): an object still
    linked to nothing, of at most ``area_change_m2``, within ``tolerance_m`` of another
    object of its own side is a piece of it (left at a seam): it is linked to the
    nearest. Returns the links and the near pairs looked at, both as (piece,
    neighbour) positions."""
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp))
    cand = np.flatnonzero(lone & (objs.area_m2 <= rule.area_change_m2))
    if not len(cand) or len(objs) < 2:
        return empty, empty
    env = envelopes(objs.bounds[cand], rule.tolerance_m)
    o, q = shapely.STRtree(env).query(objs.geoms)  # envelopes: no predicate
    keep = (o != cand[q]) & (types[o] == types[cand[q]])
    q, o = q[keep], o[keep]
    if not len(q):
        return empty, empty
    _, _, dist = _local_pairs(objs, cand, objs, o, q)
    near = dist <= rule.tolerance_m
    q, o, dist = q[near], o[near], dist[near]
    order = np.lexsort((o, dist, q))  # per piece: the nearest, then input order
    first = np.r_[True, q[order][1:] != q[order][:-1]] if len(q) else np.zeros(0, bool)
    return (cand[q[order][first]], o[order][first]), (cand[q], o)


def _fragments(b, a, li, lj, tree, types, rule: ChangeRule):
    """Links for fragments (the rule's step 1b): a small or thin object linked to nothing
    of which at most ``area_change_m2`` lies farther than ``tolerance_m`` from the other
    side's objects is a piece of them (a sliver left at a seam, an outline drawn in two
    parts): it is linked to the nearest. Returns (before, after) positions of the links and the
    near pairs looked at, (lone after, before) and (lone before, after)."""
    links = {0: [np.zeros(0, np.intp)], 1: [np.zeros(0, np.intp)]}
    empty = np.zeros(0, np.intp)
    near_pairs = [(empty, empty), (empty, empty)]
    linked = [np.zeros(len(b), bool), np.zeros(len(a), bool)]
    linked[0][li] = True
    linked[1][lj] = True
    for k, (mine, other) in enumerate(((a, b), (b, a))):
        lone = np.flatnonzero(~linked[1 - k])
        if not len(lone) or not len(other):
            continue
        env = envelopes(mine.bounds[lone], rule.tolerance_m)
        if k == 0:  # a small tree of the lone after objects, queried with the before ones
            o, q = shapely.STRtree(env).query(other.geoms)  # envelopes: no predicate
        else:
            q, o = tree.query(env)
        same = types[1 - k][lone[q]] == types[k][o]
        q, o = q[same], o[same]
        if not len(q):
            continue
        near, dist, beyond = _near_and_beyond(mine, other, lone, q, o, rule)
        q, o, dist = q[near], o[near], dist[near]
        near_pairs[k] = (lone[q], o)
        frag = beyond[q] <= rule.area_change_m2
        q, o, dist = q[frag], o[frag], dist[frag]
        order = np.lexsort((o, dist, q))  # per lone object: the nearest, then input order
        first = np.r_[True, q[order][1:] != q[order][:-1]] if len(q) else np.zeros(0, bool)
        links[1 - k].append(lone[q[order][first]])
        links[k].append(o[order][first])
    before, after = np.concatenate(links[0]), np.concatenate(links[1])
    return before, after, near_pairs


def _local_pairs(objs: Objects, sel: np.ndarray, other: Objects, o: np.ndarray, q: np.ndarray):
    """Pairs (``objs`` object ``sel[q]``, ``other`` object ``o``) in metres, in a local
    frame per ``sel`` object (its envelope centre): ``sel``'s geometries, ``o``'s, and
    the pairs' distances (m)."""
    lon0 = (objs.bounds[sel, 0] + objs.bounds[sel, 2]) / 2
    lat0 = objs.lat[sel]
    kx, ky = metres_per_degree(lat0)
    mine = to_local(objs.geoms[sel], lon0, lat0, kx, ky)
    theirs = to_local(other.geoms[o], lon0[q], lat0[q], kx[q], ky[q])
    return mine, theirs, shapely.distance(mine[q], theirs)


def _near_and_beyond(lone_side, other, lone, q, o, rule: ChangeRule):
    """For candidate pairs (lone object ``lone[q]``, other-side object ``o``): whether
    they lie within ``tolerance_m``, their distance (m), and per lone object that can be
    a fragment — small (at most ``area_change_m2``) or thin (its mean width, 2 · area /
    perimeter, at most ``tolerance_m``: a sliver) — the area (m²) of it lying farther
    than the tolerance from all its near neighbours (infinite for the others: a small
    building squeezed between two others is no fragment of them)."""
    tol = rule.tolerance_m
    beyond = np.full(len(lone), np.inf)
    has, slot = np.unique(q, return_inverse=True)  # lone objects with candidates
    mine, theirs, dist = _local_pairs(lone_side, lone[has], other, o, slot)
    near = dist <= tol
    hit, hslot = np.unique(slot[near], return_inverse=True)
    if len(hit):
        area = shapely.area(mine[hit])
        slight = (area <= rule.area_change_m2) | (2.0 * area <= tol * shapely.length(mine[hit]))
        cover = shapely.buffer(union_by_group(theirs[near], hslot), tol, quad_segs=4)
        beyond[has[hit[slight]]] = shapely.area(
            shapely.difference(mine[hit[slight]], cover[slight])
        )
    return near, dist, beyond


def classify(b: Objects, a: Objects, grp: Groups, rule: ChangeRule) -> np.ndarray:
    """A change code per group (the rule's steps 2 and 3)."""
    code = np.full(len(grp), UNCHANGED, np.int8)
    # a side of fragments only (at most area_change_m2 in all, against more) is nothing
    tiny_b = grp.area_before <= rule.area_change_m2
    tiny_a = grp.area_after <= rule.area_change_m2
    code[(grp.n_before == 0) | (tiny_b & ~tiny_a)] = NEW
    code[(grp.n_after == 0) | (tiny_a & ~tiny_b)] = REMOVED
    both = (code == UNCHANGED) & (grp.n_before > 0) & (grp.n_after > 0)
    delta = np.abs(grp.area_after - grp.area_before)
    grown = delta > np.maximum(rule.area_change_m2, rule.area_change * grp.area_before)
    # the tolerant IoU is never below the plain one: only these can be modified
    check = np.flatnonzero(both & (grown | (group_iou(grp) < rule.min_iou)))
    if len(check):
        added, lost = _beyond(b, a, grp, check, rule.tolerance_m)
        union = grp.area_before[check] + grp.area_after[check] - grp.inter[check]
        moved = added + lost
        with np.errstate(divide="ignore", invalid="ignore"):
            reshaped = (1.0 - moved / union < rule.min_iou) & (moved > rule.area_change_m2)
        real = grown[check] & (np.maximum(added, lost) > rule.area_change_m2)
        code[check[real | reshaped]] = MODIFIED
    return code


def group_iou(grp: Groups) -> np.ndarray:
    union = grp.area_before + grp.area_after - grp.inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, grp.inter / union, np.nan)


def members(label: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objects (positions) whose label is in ``groups``, and their group's position in
    ``groups``."""
    size = max(int(label.max()) if len(label) else -1, int(groups.max()) if len(groups) else -1)
    where = np.full(size + 1, -1)
    where[groups] = np.arange(len(groups))
    pos = np.flatnonzero(where[label] >= 0)
    return pos, where[label[pos]]


def _beyond(
    b: Objects, a: Objects, grp: Groups, groups: np.ndarray, tolerance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``groups``: the area (m²) of the after side lying farther than
    ``tolerance_m`` outside the before side (added), and the reverse (lost).

    Outlines are compared in a local metric frame per group; a one-to-one pair whose
    vertices all lie within the tolerance of the other outline (discrete Hausdorff
    distance) adds and loses nothing, without buffers."""
    pb, gb = members(grp.label_b, groups)
    pa_, ga = members(grp.label_a, groups)
    # each group's frame: the envelope centre of its first before object
    first = np.full(len(groups), -1)
    first[gb[::-1]] = pb[::-1]
    lon0 = (b.bounds[first, 0] + b.bounds[first, 2]) / 2
    lat0 = b.lat[first]
    kx, ky = metres_per_degree(lat0)
    local_b = to_local(b.geoms[pb], lon0[gb], lat0[gb], kx[gb], ky[gb])
    local_a = to_local(a.geoms[pa_], lon0[ga], lat0[ga], kx[ga], ky[ga])
    shape_b = union_by_group(local_b, gb)
    shape_a = union_by_group(local_a, ga)
    added, lost = np.zeros(len(groups)), np.zeros(len(groups))
    todo = np.arange(len(groups))
    one = (grp.n_before[groups] == 1) & (grp.n_after[groups] == 1)
    if one.any():
        close = shapely.hausdorff_distance(shape_b[one], shape_a[one]) <= tolerance_m
        settled = np.zeros(len(groups), bool)
        settled[np.flatnonzero(one)[close]] = True
        todo = np.flatnonzero(~settled)
    if len(todo):
        sb, sa = shape_b[todo], shape_a[todo]
        buf_b = shapely.buffer(sb, tolerance_m, quad_segs=4)
        buf_a = shapely.buffer(sa, tolerance_m, quad_segs=4)
        added[todo] = shapely.area(shapely.difference(sa, buf_b))
        lost[todo] = shapely.area(shapely.difference(sb, buf_a))
    return added, lost
