"""Object-level change between two results: ``new``, ``removed``, ``modified``, ``unchanged``.

Two runs over the same place at two dates detect the same buildings with slightly
different outlines (vertices a few decimetres apart, simplified differently) and cut
them at different tile seams. :func:`changes` matches the objects of the two dates by
overlap and reports what changed, so that detection noise and tiling never show as
change.

The rule
--------
Objects are polygons (lines and points are left out) of the same ``object_type``.

1. **Link.** A before object and an after object are linked when they overlap over at
   least ``min_overlap`` (default 0.5) of the smaller of the two. Linked objects form
   groups (connected components): one before object covered by several after objects
   (a split, or an object left in pieces at a seam) is one group (``match="1:n"``), and
   so is the reverse (a merge, ``"n:1"``); most groups are ``"1:1"``.
2. **Fragments.** A small (at most ``area_change_m2``) or thin (mean width at most
   ``tolerance_m``) object linked to nothing of which at most ``area_change_m2`` lies
   farther than ``tolerance_m`` from the other side's objects (a sliver a seam shaved
   off, an outline drawn in two parts) joins the group of the nearest of them; one
   still linked to nothing, of at most ``area_change_m2``, within ``tolerance_m`` of an
   object of its own side is a piece of that object (left at a seam) and joins its
   group. Anything else linked to nothing is ``new`` (after) or ``removed`` (before).
3. **Compare** each group as a whole: ``area_before_m2`` and ``area_after_m2`` are the
   sums of its objects' areas (geodesic, m²) per side, ``iou`` the intersection over
   union of the two sides. A side adding up to at most ``area_change_m2`` against a
   larger other side is nothing: the group is ``new`` / ``removed``.
4. **Modified** when the area changed by more than ``area_change`` (default 10 %) *and*
   ``area_change_m2`` (default 5 m²) and more than ``area_change_m2`` of one side lies
   farther than ``tolerance_m`` (default 1 m) outside the other; or when the parts lying
   farther than the tolerance outside the other side (both ways, ``outside``) exceed
   ``area_change_m2`` and ``1 - outside / union`` is below ``min_iou`` (default 0.8): a
   building rebuilt in another place. Otherwise ``unchanged``.

The "farther than the tolerance" clauses make outline noise harmless: ±0.3 m of vertex
noise moves a 60 m² house's area by more than 10 % now and then, but nothing of it lies
a metre outside the other outline. A building cut at a seam of one run and whole in the
other is a ``1:n`` group with equal areas; an extension 3 m deep that adds 10 % and 5 m²
is modified with its area change (one shallower than the tolerance is not seen).

How it is computed — the fast path for identical outlines (:mod:`._identical`), the
overlay kernel (:mod:`._overlay`), the rule (:mod:`._rule`),
the change frame and table (:mod:`._table`), the partitioned executor for country-sized
pairs given as GeoParquet files or directories (:mod:`._partitioned`) — is in
``DESIGN.md``, *Change detection*.

>>> ch = mapflow_geo.changes(res_2022, res_2024)                     # doctest: +SKIP
>>> ch["change"].value_counts()                                      # doctest: +SKIP
>>> change_table(ch, aois=res_2024.aois)                             # doctest: +SKIP
"""

from mapflow_geo.results.changes._api import changes, changes_to_parquet
from mapflow_geo.results.changes._rule import ChangeRule
from mapflow_geo.results.changes._table import CHANGE_COLUMNS, CHANGES, change_table

__all__ = [
    "CHANGES",
    "CHANGE_COLUMNS",
    "ChangeRule",
    "change_table",
    "changes",
    "changes_to_parquet",
]
