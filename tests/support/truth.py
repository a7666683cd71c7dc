"""Comparing a run's objects with the simulator's ground truth, damaged objects apart."""

from __future__ import annotations

import numpy as np
import shapely

#: Damage that repair restores exactly (the object comes back whole).
RESTORED = {"repeated_points", "collection", "z"}
#: Damage that leaves nothing (the object's pieces are dropped).
GONE = {"empty", "null"}


def truth_in(server, areas, date: str, model: str = "buildings"):
    """The true objects clipped to each area (polygons with an area), their ids and
    how the simulator's ``damaged_geometry`` fault damages them."""
    geoms, ids = [], []
    for area in areas:
        g, props = server.truth(area.bounds, model, date=date)
        clipped = shapely.intersection(np.asarray(g, dtype=object), area)
        keep = shapely.area(clipped) > 0
        geoms.append(clipped[keep])
        ids.append(np.asarray(props["truth_id"])[keep])
    geoms = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
    ids = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    return geoms, ids, server.damage(ids)


def check_against_truth(got: np.ndarray, truth: np.ndarray, damage: np.ndarray) -> dict:
    """Every undamaged (or exactly restorable) true object back whole (IoU ≥ 0.98) and
    exactly once; every other damaged one repaired (an object over it) or gone; every
    object valid. Returns counts for the report."""
    assert shapely.is_valid(got).all(), "an invalid geometry reached the result"
    assert np.isin(shapely.get_type_id(got), (3, 6)).all(), "a non-polygonal object"
    tree = shapely.STRtree(got)
    i_true, i_got = tree.query(truth, predicate="intersects")
    inter = shapely.area(shapely.intersection(truth[i_true], got[i_got]))
    union = shapely.area(shapely.union(truth[i_true], got[i_got]))
    whole = inter / union >= 0.98
    per_truth = np.bincount(i_true[whole], minlength=len(truth))
    over = inter / shapely.area(truth[i_true]) > 0.01  # not only a shared wall
    touched = np.bincount(i_true[over], minlength=len(truth))
    must_be_whole = (damage == "") | np.isin(damage, list(RESTORED))
    lost = np.flatnonzero(must_be_whole & (per_truth != 1))
    assert len(lost) == 0, f"{len(lost)} of {must_be_whole.sum()} true objects not back whole once"
    repaired = damage == "self_intersecting"
    assert (touched[repaired] > 0).all(), "a self-intersecting object was lost, not repaired"
    gone = np.isin(damage, list(GONE))
    assert (touched[gone] == 0).all(), "an empty or null object came back"
    return {
        "truth": len(truth),
        "whole": int(must_be_whole.sum()),
        "repaired": int(repaired.sum()),
        "dropped": int(gone.sum()),
    }
