"""Generated mutation testing of one money or answer module with mutmut: ``make mutate
MODULE=mapflow_geo/_secrets.py`` (``python tools/mutmut_module.py MODULE``).

mutmut (3.x) generates every small change of the module's functions (operators,
comparisons, constants, arguments, ``and``/``or``, ``break``/``continue``…) and runs,
for each, the tests that reach that function. This tool

1. copies ``mapflow_geo/``, ``tests/``, ``data/`` and ``pyproject.toml`` to
   ``build/mutmut/<module>/`` (the checkout is never changed; the folder keeps mutmut's
   cache, so a second run only re-tests what changed);
2. writes a ``[tool.mutmut]`` table there: the one module to mutate and the test files
   that guard it (:data:`MODULES`; bounded, no soak or browser campaigns);
3. runs ``mutmut run`` (``MUTMUT_CHILDREN`` workers, default 2; each mutant is a fork
   of one pytest process, so tests run in-process, not under xdist), then prints every
   survivor with its diff and the kill rate over the mutants that are not equivalent
   (:data:`EQUIVALENT`, each with its reason; docs/reliability.md). Processes that tests
   start import the installed package, not the mutant: what only a child process runs
   is not judged here (``make mutate-named`` replays such campaigns).

Usage::

    python tools/mutmut_module.py --list                        # the modules and tests
    python tools/mutmut_module.py mapflow_geo/_secrets.py       # one module
    python tools/mutmut_module.py mapflow_geo/api/processings.py --only '*pages*'
    make mutate MODULE=mapflow_geo/run/prepare.py
    make mutate                                                 # every module: hours

Exit status 1 when a non-equivalent mutant survived.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")

_MONEY = ["tests/rules/test_money_rules.py"]
#: The money and answer modules and the test files that guard each.
MODULES: dict[str, list[str]] = {
    "mapflow_geo/_secrets.py": [
        "tests/base/test_secrets_module.py",
        "tests/base/test_secrets_rules.py",
    ],
    "mapflow_geo/tiling.py": [
        "tests/geometry/test_tiling.py",
        "tests/geometry/test_tiling_props.py",
        *_MONEY,
    ],
    "mapflow_geo/run/prepare.py": [
        *_MONEY,
        "tests/rules/test_mutants.py",
        "tests/run/test_runner.py",
        # the fingerprint: another account (run_cache) or host (run_guards) never resumes
        "tests/run/test_run_cache.py",
        "tests/reliability/test_run_guards.py",
        # a re-planned piece's body and name (shared_part)
        "tests/run/test_runner_replan.py",
    ],
    "mapflow_geo/run/engine.py": [
        *_MONEY,
        "tests/rules/test_mutants.py",
        "tests/run/test_runner.py",
        "tests/run/test_runner_replan.py",
        "tests/reliability/test_create_outcomes.py",
        # a result that stays unreadable, per AOI or split per tile (_store, _store_by_tile)
        "tests/reliability/test_damaged_results.py",
        # the objects a run keeps as it stores them, by file (_store, _store_by_tile)
        "tests/run/test_kept_features.py",
        # absence concluded only from a complete sweep (_sweep's paging)
        "tests/reliability/test_cut_listings.py",
        # the run dir of a call (_run_dir: fresh) and a stored run announced (_announce_stored)
        "tests/run/test_run_cache.py",
        # the progress bar's phases through a run (Runner._run, _create_planned)
        "tests/run/test_progress.py",
    ],
    # the lagged-listing campaign's run is a child process (not the mutant): not listed;
    # the crash campaigns' runs are child processes (the installed package, not the
    # mutant): 50 s per surviving mutant for nothing; make mutate-named replays them
    "mapflow_geo/run/journal.py": [*_MONEY, "tests/run/test_journal.py"],
    "mapflow_geo/run/store.py": [
        *_MONEY,
        "tests/run/test_runner.py",
        "tests/run/test_run_cache.py",
        "tests/run/test_store.py",
        # a re-planned run resumed: the stored plan's pieces (apply_stored_plan)
        "tests/run/test_runner_replan.py",
    ],
    "mapflow_geo/run/create.py": [
        *_MONEY,
        "tests/rules/test_mutants.py",
        "tests/run/test_runner.py",
        "tests/reliability/test_create_outcomes.py",
        "tests/run/test_runner_replan.py",  # a create refused as too large: replan, _split
    ],
    "mapflow_geo/run/fetch.py": [
        "tests/run/test_runner.py",
        "tests/rules/test_answer_rules.py",
        "tests/reliability/test_damaged_results.py",
        "tests/reliability/test_polling_faults.py",
        "tests/reliability/test_aoi_results.py",
    ],
    "mapflow_geo/run/status.py": [*_MONEY, "tests/run/test_journal.py", "tests/run/test_store.py"],
    "mapflow_geo/run/_files.py": ["tests/run/test_journal.py", "tests/run/test_store.py"],
    "mapflow_geo/run/monitor.py": ["tests/run/test_monitor.py", "tests/rules/test_answer_rules.py"],
    "mapflow_geo/results/stitch.py": [
        "tests/results/test_stitch_parts.py",
        "tests/results/test_stitch_props.py",
        "tests/results/test_stitch_truth.py",
        "tests/rules/test_mutants.py",
        "tests/results/test_results.py",
    ],
    "mapflow_geo/results/dataset.py": [
        "tests/results/test_dataset.py",
        "tests/rules/test_answer_rules.py",
    ],
    **{
        f"mapflow_geo/results/changes/{name}.py": [
            "tests/results/test_changes.py",
            "tests/results/test_changes_truth.py",
            "tests/results/test_changes_identical.py",
            "tests/rules/test_answer_rules.py",
        ]
        for name in ("_rule", "_identical", "_overlay")
    },
    # the client's paging: the page walk and the processings' sweep (run the latter
    # with --only '*pages*' and the like)
    "mapflow_geo/api/_paging.py": [
        "tests/api/test_client.py",
        "tests/api/test_client_contract.py",
        "tests/api/test_client_paging.py",
        *_MONEY,
    ],
    "mapflow_geo/api/processings.py": [
        "tests/api/test_client.py",
        "tests/api/test_client_contract.py",
        "tests/api/test_client_paging.py",
        *_MONEY,
    ],
}

#: Mutants that change nothing a program can observe, by mutmut's name, with the reason.
#: Names are stable while a function's text is; a stale entry only shows as unknown.
EQUIVALENT: dict[str, str] = {
    "mapflow_geo._secrets.x__decode_basic__mutmut_10": 'codec name "UTF-8" = "utf-8"',
    "mapflow_geo._secrets.x_secret_values__mutmut_14": 'codec name "UTF-8" = "utf-8"',
    "mapflow_geo._secrets.x_secret_values__mutmut_16": 'codec name "ASCII" = "ascii"',
    "mapflow_geo._secrets.x_secret_values__mutmut_40": (
        'quote(safe="XXXX"): letters are never quoted, so "X" as a safe character changes nothing'
    ),
    "mapflow_geo.run.prepare.x_check_budget__mutmut_23": (
        "getattr default for billing_type: UserStatus always has the field"
    ),
    "mapflow_geo.run.prepare.x_check_budget__mutmut_26": (
        "getattr without a default: UserStatus always has billing_type"
    ),
    "mapflow_geo.run.prepare.x_check_budget__mutmut_29": (
        "getattr default for billing_type: UserStatus always has the field"
    ),
    "mapflow_geo.run.prepare.x_check_budget__mutmut_30": (
        'no billing type as "XXXX" instead of "": neither is CREDITS nor AREA'
    ),
    "mapflow_geo.tiling.x_credits_for__mutmut_19": (
        "float tolerance max(2, raw) for max(1, raw): differs only for charges below 2 "
        "credits lying 1e-9 to 2e-9 above an integer, which integer m² areas and prices "
        "to the cent never give (their products are multiples of 1e-8)"
    ),
    "mapflow_geo.tiling.x__cut_polygon__mutmut_219": (
        "pieces to measure taken as area <= 0 instead of < 0: a piece enters with -1 (to "
        "measure) or its full cell's area, a box of positive width and height, never 0"
    ),
    "mapflow_geo.tiling.x__strip_pieces__mutmut_42": (
        "longitude strips' boxes reaching 2 degrees instead of 1 below the polygon: the "
        "intersection is the same (GEOS computes each crossing within the overlap of the "
        "two segments' envelopes, which the box's far end does not change)"
    ),
    "mapflow_geo.tiling.x__strip_alternative__mutmut_22": (
        "axis 2 for 1: _cumulative_area and _strip_pieces take any axis but 0 as "
        "latitude; the axis only enters the keys, shared by every piece of one strip cut"
    ),
    "mapflow_geo.tiling.x__ensure_fit__mutmut_56": (
        "halves created with area +1 instead of -1: every new half is measured right "
        "after (the `if new:` loop), before anything reads its area"
    ),
    "mapflow_geo.tiling.x__try_place__mutmut_79": (
        "a merged tile's bbox area left to _bbox_area: it measures box_area_km2 of the "
        "same bounds (ubounds == bounds), the same number"
    ),
    "mapflow_geo.tiling.x__tile_ids__mutmut_23": (
        "WKB with output_dimension=3: shapely.transform (include_z=False) made every "
        "geometry 2D, and a 2D geometry's WKB is the same either way"
    ),
    **{
        f"mapflow_geo.run.journal.xǁJournalǁtally__mutmut_{n}": (
            "zip(strict=...) over the six names and the query's six columns: same length"
        )
        for n in (37, 40, 45)
    },
    **{
        f"mapflow_geo.run.monitor.xǁMonitorǁcheck__mutmut_{n}": (
            "the stored-file filter's and/or changed: an OK download always has its path, "
            "a damaged one neither path nor objects, and a file of no objects adds none"
        )
        for n in (36, 37)
    },
    **{
        f"mapflow_geo.run.create.xǁPlanIndexǁof__mutmut_{n}": (
            "groupby(sort=None) or sort left to its default (True): only the order of "
            "the keys changes, and the positions are only ever looked up by key, never "
            "iterated in order"
        )
        for n in (14, 16)
    },
    "mapflow_geo.run.prepare.x_check_budget__mutmut_33": (
        'an account without a billing type read as "XXXX" instead of "": neither is '
        "CREDITS or AREA, the only two the budget check compares with"
    ),
    "mapflow_geo.run.monitor.xǁMonitorǁ_fetch__mutmut_25": (
        "the row looked up for a missing tile id too: Series.get of an id that no tile "
        "has (tile ids are non-empty strings) gives None, as the else branch does"
    ),
    "mapflow_geo.run.create.xǁCreatorǁ_by_name__mutmut_3": (
        "the name lookup without its `key in procs` guard: every intent's key is in procs "
        "(a key leaves the plan only by a re-plan, after its refusal moved it back to "
        "planned; a resumed run rebuilds procs from the stored plan)"
    ),
    "mapflow_geo.api._paging.x_one_page__mutmut_33": (
        "Page(last=...) left to its default: Page.last defaults to True"
    ),
    "mapflow_geo.api._paging.x_created_key__mutmut_6": (
        "getattr without a default for created: its one caller sorts Processing records, "
        "which always have the field"
    ),
    "mapflow_geo.api._paging.x_created_key__mutmut_14": (
        'float("-INF") = float("-inf"): Python reads infinities case-insensitively'
    ),
    "mapflow_geo.api._paging.x_walk__mutmut_27": (
        '"post" for "POST": the transport upper-cases the method'
    ),
    **{
        f"mapflow_geo.run.monitor.xǁMonitorǁ_record__mutmut_{n}": (
            "meta's template key misnamed: the monitor reads only meta's date"
        )
        for n in (21, 22)
    },
    "mapflow_geo.run.monitor.x__state__mutmut_1": (
        "`or` for the last `and`: stored pieces always carry monitor_date (the monitor "
        "writes it into every result file), and no pieces give the empty frame either way"
    ),
    "mapflow_geo.run.monitor.xǁMonitorǁcheck__mutmut_43": (
        "read_result_files([]) is empty_features(), as the else branch"
    ),
    "mapflow_geo.run.monitor.xǁMonitorǁstate__mutmut_14": (
        "read_result_files([]) is empty_features(), as the else branch"
    ),
    "mapflow_geo.run.monitor.xǁMonitorǁstate__mutmut_8": (
        "a stored download has both a path and its count: a file of 0 objects adds none"
    ),
    "mapflow_geo.run.monitor.x__date_of__mutmut_21": (
        'a missing text searched as "XXXX" instead of "": neither holds a date'
    ),
    **{
        f"mapflow_geo.run.monitor.x__date_of__mutmut_{n}": (
            "getattr(proc, name) without its default for name, params or created: the "
            "template's processings are Processing records, which always have the field"
        )
        for n in (5, 14, 29)
    },
    **{
        f"mapflow_geo.run.monitor.x__template_limit__mutmut_{n}": (
            "getattr(status, 'raw') with another default or none: every record has raw"
        )
        for n in (5, 8)
    },
    **{
        f"mapflow_geo.run.journal.xǁJournalǁmark_intent__mutmut_{n}": (
            "meta's text without sorted keys: it is read back as a dict, its text compared "
            "by nothing"
        )
        for n in (3, 5, 6)
    },
    **{
        f"mapflow_geo.run.status.x_parse_status__mutmut_{n}": (
            'a missing status read as "NONE" or "XXXX" instead of "": none of them is a '
            "run's own status, so Status.parse(None) answers UNKNOWN either way"
        )
        for n in (2, 4)
    },
    "mapflow_geo.run.journal.xǁ_GroupCommitǁsubmit__mutmut_15": (
        "the leader's flag reset to None instead of False: both are false"
    ),
    "mapflow_geo.results.stitch.x_stitch__mutmut_1": (
        "the shortcut's `or` as `and`: with no pieces, or every input row one tile, the "
        "general path flags no piece and returns the same frame"
    ),
    "mapflow_geo.results.stitch.x_seam_mask__mutmut_7": (
        "the plan given rebuilt from the tiles: a caller passes TilePlan(tiles), the same arrays"
    ),
    **{
        name: (
            "the tiles passed to _seam_mask as None: _seam_mask takes its tile arrays from the "
            "plan and never reads its tiles argument"
        )
        for name in (
            "mapflow_geo.results.stitch.x_stitch__mutmut_20",
            "mapflow_geo.results.stitch.x_seam_mask__mutmut_12",
        )
    },
    "mapflow_geo.results.stitch.x__line_pairs__mutmut_42": (
        "a line end paired with itself (a <= b): a piece is in its own tile, so the "
        "pos[a] != pos[b] term drops every such pair"
    ),
    "mapflow_geo.results.stitch.xǁTilePlanǁ__init____mutmut_64": (
        "two NaN rows for a tile not in the plan instead of one: position -1 still reads NaN"
    ),
    "mapflow_geo.results.stitch.xǁTilePlanǁ__init____mutmut_71": (
        "a tile not in the plan taken as a rectangle: its bounds are NaN, so it is never "
        "near either way"
    ),
    "mapflow_geo.results.stitch.x__merge_groups__mutmut_76": (
        "GeoDataFrame(crs=None): the merged geometry column already carries the pieces' CRS"
    ),
    **{
        f"mapflow_geo.results.stitch.x__cut_pairs__mutmut_{n}": reason
        for n, reason in (
            (7, "groupby(dropna=None): pandas reads it as False"),
            (8, "groupby(sort=None): the key's numbering may change, only its equality counts"),
            (13, "groupby(sort=True): the key's numbering changes, only its equality counts"),
            (24, "a kind with one piece searched too: a lone piece pairs with nothing"),
        )
    },
    "mapflow_geo.results.stitch.x__edge_pairs__mutmut_18": (
        "a cut edge exactly MIN_OVERLAP_DEG long kept: it overlaps another by at most its "
        "length, never by more than MIN_OVERLAP_DEG"
    ),
    **{
        f"mapflow_geo.results.stitch.x__nearest_across__mutmut_{n}": (
            "the (segment, tile) key as seg·(max+2) − tile or seg·(max+3) + tile: still one "
            "number per pair, for tiles 0..max"
        )
        for n in (12, 17)
    },
    **{
        f"mapflow_geo.results.stitch.x__join_values__mutmut_{n}": (
            "sort_values(kind=...) over two columns: pandas ignores kind for several columns"
        )
        for n in (10, 12, 17, 18)
    },
    "mapflow_geo.results.stitch.x__join_values__mutmut_44": (
        "to_numpy(zero_copy_only=None): pyarrow reads None as False"
    ),
    "mapflow_geo.results.stitch.x_union_by_group__mutmut_7": (
        'argsort(kind="STABLE"): numpy reads sort kinds case-insensitively'
    ),
    **{
        f"mapflow_geo.results.stitch.x_components__mutmut_{n}": reason
        for n, reason in (
            (7, "edge weights as float64 for int8: only an edge's presence counts"),
            (9, "edge weights as float64 for int8: only an edge's presence counts"),
            (11, "directed=None is false: the graph is read as undirected"),
            (13, "directed, connection='weak' (scipy's default): the same components"),
            (14, "directed, connection='weak' (scipy's default): the same components"),
        )
    },
    **{
        f"mapflow_geo.results.stitch.x__coverage_union__mutmut_{n}": (
            "the group count when no piece is given: only groups of two or more pieces reach "
            "the coverage union"
        )
        for n in (3, 9)
    },
    "mapflow_geo.results.stitch.x__coverage_union__mutmut_57": (
        "the table made by np.full(..., None) without dtype=object: numpy takes the dtype "
        "of the fill value None, object"
    ),
    "mapflow_geo.results.stitch.x__nearest_across__mutmut_25": (
        "the nearest-gap table one slot longer: it is written and read only at the group "
        "labels 0..max, the extra slot never"
    ),
    "mapflow_geo.results.changes._identical.x_same_outlines__mutmut_54": (
        "bincount without minlength: every outline has vertices, so the counts already "
        "reach the last pair"
    ),
    **{
        name: (
            "a batch without edges (break for continue; pieces[0] of none): never reached, "
            "a batch of one or more geometries always has edges (its simple or its other "
            "polygons)"
        )
        for name in (
            "mapflow_geo.results.changes._overlay.xǁEdgesǁof__mutmut_32",
            "mapflow_geo.results.changes._overlay.x__edges__mutmut_107",
        )
    },
    **{
        f"mapflow_geo.results.changes._overlay.xǁEdgesǁof__mutmut_{n}": (
            "zip(strict=...) over the four edge columns and a batch's first four: same length"
        )
        for n in (36, 39, 41)
    },
    "mapflow_geo.results.changes._overlay.xǁEdgesǁof__mutmut_52": (
        "a batch's last geometry read from its second-to-last edge: a ring with an edge has "
        "at least two, so the last two edges have one owner"
    ),
    **{
        f"mapflow_geo.results.changes._overlay.x__edges__mutmut_{n}": (
            "the simple polygons' exterior flags as float ones: compared with != to a "
            "boolean, 1.0 reads as True"
        )
        for n in (20, 22)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__edges__mutmut_{n}": (
            "shapely's ragged offsets kept as its int32: they are only differenced, "
            "counted and used as indices, and every offset already fits in int32"
        )
        for n in (27, 29, 39, 41, 45, 47, 51, 53)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__edges__mutmut_{n}": (
            "the rings' exterior flags as a float array: compared with != to a boolean, "
            "1.0 and 0.0 read as True and False"
        )
        for n in (67, 69)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__edges__mutmut_{n}": (
            "zip(strict=...) over the simple and the other polygons' edges: five columns each"
        )
        for n in (111, 113, 114)
    },
    "mapflow_geo.results.changes._overlay.x__ring_edges__mutmut_51": (
        "the rings' signed areas without minlength: every ring has edges, so the sums "
        "already reach the last ring"
    ),
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the on-edge or crossing test blind to, or counting, one end of an edge (t or u "
            "within ε of 0, or of 1): "
            "a vertex ends one edge and starts the next, so the pair with the ring's other "
            "edge at that vertex is still on and not crossing, and the pair is declined"
        )
        for n in (90, 92, 95, 97, 106, 107, 110, 111)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "a crossing's parameter divided by its sign instead of multiplied: the sign is "
            "±1 wherever a crossing counts (not parallel), and x / ±1 = x · ±1 exactly"
        )
        for n in (132, 141)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the ray cast counting an end exactly on the other's edge: such an end is on that "
            "edge and not crossing it, so the pair is declined as degenerate either way"
        )
        for n in (149, 159)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the ray-cast counts without minlength: every edge meets at least one edge of "
            "the other polygon, so the counts already reach the last edge"
        )
        for n in (172, 181, 196, 212)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the pairs' area or degeneracy sums without minlength: every outline of positive "
            "area has edges, so every pair, the last too, has terms"
        )
        for n in (221, 233, 244)
    },
    "mapflow_geo.results.changes._overlay.x__used__mutmut_5": (
        "bincount without minlength: the positions of the non-zero counts are the same"
    ),
    **{
        f"mapflow_geo.results.changes._overlay.x_intersection_areas__mutmut_{n}": (
            "the kernel's steps cut elsewhere (one step, steps of one edge pair, a first step "
            "of one pair): each pair's terms are summed on their own in the same order, so "
            "every area is the same; only memory and speed change"
        )
        for n in (29, 36, 37, 38, 39, 40, 41, 56, 57, 58, 59)
    },
    "mapflow_geo.results.changes._overlay.x__edges__mutmut_122": (
        'argsort(kind="STABLE"): numpy reads sort kinds case-insensitively'
    ),
    "mapflow_geo.results.changes._overlay.x__edges__mutmut_36": (
        "one geometry more in the polygon count of a batch of Polygons: no ring belongs to "
        "it, so each ring's geometry is the same"
    ),
    "mapflow_geo.results.changes._overlay.xǁEdgesǁof__mutmut_45": (
        "each batch's edge counts assigned instead of added: a batch writes only its own "
        "geometries' slice, still zero"
    ),
    **{
        f"mapflow_geo.results.changes._rule.x_match_groups__mutmut_{n}": (
            "the after side's tree built when a side has no objects: its query of no "
            "objects (or of an empty tree) gives no pairs, as the empty arrays do, and "
            "_fragments queries it only for lone before objects against after ones"
        )
        for n in (4, 6)
    },
    "mapflow_geo.results.changes._rule.x_match_groups__mutmut_39": (
        "identical pairs given the smaller area instead of the before one: an identical "
        "outline has the same area on both sides (the same shapely area of the same "
        "coordinates)"
    ),
    "mapflow_geo.results.changes._rule.x_match_groups__mutmut_79": (
        "a link asking inter >= 0 instead of > 0 beside inter >= min_overlap * smaller: "
        "objects of no area are dropped on reading, so the second bound is positive and "
        "implies the first"
    ),
    "mapflow_geo.results.changes._rule.x_match_groups__mutmut_51": (
        "the placeholder of pairs not measured yet 1.0 instead of 0: no such pair links "
        "(it is not in maybe), and every pair summed in a group is measured first "
        "(maybe) or again (late)"
    ),
    **{
        f"mapflow_geo.results.changes._rule.x_classify__mutmut_{n}": (
            "the change codes held as the default integer instead of int8: the same values "
            "0-3, read only as positions in CHANGES"
        )
        for n in (4, 7)
    },
    **{
        f"mapflow_geo.results.changes._rule.x_classify__mutmut_{n}": (
            "n_before (n_after) >= 0 for > 0 among groups still unchanged: a group with no "
            "before (after) object is already new (removed)"
        )
        for n in (28, 30)
    },
    **{
        f"mapflow_geo.results.changes._rule.x_classify__mutmut_{n}": (
            "a division error left to numpy's default: the union of a checked group holds "
            "both sides' positive areas, never 0, so nothing divides by zero"
        )
        for n in (64, 65, 66, 67)
    },
    **{
        f"mapflow_geo.results.changes._rule.x_group_iou__mutmut_{n}": (
            "a division error left to numpy's default, or union >= 0 for > 0: every group "
            "holds an object of positive area, so its union is never 0"
        )
        for n in (4, 5, 6, 7, 18)
    },
    **{
        f"mapflow_geo.results.changes._rule.x_members__mutmut_{n}": (
            "the lookup table sized or filled otherwise (one or two slots more, -2 for -1, "
            "a bound that max() overrides): the same positions, as groups is never empty"
        )
        for n in (9, 10, 14, 15, 22, 24)
    },
    "mapflow_geo.results.changes._rule.x_classify__mutmut_47": (
        "groups with an IoU of exactly min_iou checked too: not grown (else checked "
        "already), and their tolerant IoU is never below the plain one, so neither clause "
        "makes them modified"
    ),
    "mapflow_geo.results.changes._rule.x__pieces__mutmut_16": (
        "the early return only when there is neither a candidate nor a second object: "
        "with no candidate the query finds no pair, with one object its only pair is the "
        "candidate with itself, dropped; no piece either way"
    ),
    **{
        f"mapflow_geo.results.changes._rule.x__envelope_overlap__mutmut_{n}": (
            "the envelopes' common width or height not clipped at 0 (no-op: the pairs come "
            "from an envelope query, their envelopes meet) or clipped at 1° (a larger bound "
            "only sends more pairs to the exact intersection, whose area decides the link)"
        )
        for n in (32, 36, 38, 42)
    },
    **{
        f"mapflow_geo.results.changes._rule.x__type_codes__mutmut_{n}": (
            "the code given to typed objects of a side with no type at all changed: every "
            "code there is -1 (missing), so np.where never picks it"
        )
        for n in (25, 26, 45, 46)
    },
    **{
        f"mapflow_geo.results.changes._rule.x__beyond__mutmut_{n}": (
            "the frame's first object before it is set: every group checked has a before "
            "object, which sets it"
        )
        for n in (16, 17)
    },
    **{
        f"mapflow_geo.run.journal.xǁJournalǁ{name}": (
            "every record read again instead of those written: the in-memory copy is the file's"
        )
        for name in (
            "mark_not_created__mutmut_11",
            "reopen_not_created__mutmut_20",
            "reopen_downloads__mutmut_19",
        )
    },
    **{
        f"mapflow_geo.run.store.x_save_inputs__mutmut_{n}": (
            "params.json's indentation: the same JSON, read back as a dict; no reader "
            "compares its text"
        )
        for n in (35, 38, 41)
    },
    "mapflow_geo.run.store.x__merge_stored__mutmut_1": (
        "the loader's default progress: its one caller, load_result, always passes it"
    ),
    **{
        f"mapflow_geo.run.store.x__merge_stored__mutmut_{n}": (
            "the stitch bar's count for a run without stored files: load_result then gives "
            "the empty frame itself and never calls the loader (and the sum is 0 anyway)"
        )
        for n in (4, 9)
    },
    **{
        f"mapflow_geo.run.store.x__tiles__mutmut_{n}": (
            "zip(strict=...) over columns of one frame: same length"
        )
        for n in (34, 37, 41, 63, 67, 75)
    },
    **{
        f"mapflow_geo.run.store.x__tiles__mutmut_{n}": (
            "a processing's messages looked up with another default: a missing key gives "
            "[] through `or []` either way"
        )
        for n in (54, 56)
    },
    "mapflow_geo.run.store.x_apply_stored_plan__mutmut_12": (
        "the stored plan with the same keys rebuilt instead of returned: it is this plan "
        "(same fingerprint), every processing kept, no piece to add; a run always plans "
        "at least one processing"
    ),
    "mapflow_geo.run.store.x_apply_stored_plan__mutmut_24": (
        "groupby without sort=: its default is sort=True"
    ),
    **{
        f"mapflow_geo.run.store.x_apply_stored_plan__mutmut_{n}": (
            "a piece's ancestor found by another split or loop condition: a planned "
            "processing's key holds no dot, so every variant stops at the part before the "
            "first dot, the key the fresh plan holds (same fingerprint)"
        )
        for n in (35, 43, 44, 46)
    },
    **{
        f"mapflow_geo.run.store.x_apply_stored_plan__mutmut_{n}": (
            "the fallback body's default as None: every piece's ancestor is in the fresh "
            "plan (same fingerprint), so the default is never taken"
        )
        for n in (51, 53)
    },
    "mapflow_geo.run.store.x_load_result__mutmut_1": (
        "load_result's default progress: its callers (the runner, open_run) always pass it"
    ),
    **{
        f"mapflow_geo.run.store.x_load_result__mutmut_{n}": (
            "features left to the loader when the run stored no file: it reads nothing "
            "(read_result_files of no file is empty_features()), stitches nothing and shows "
            "no bar for 0 pieces"
        )
        for n in (48, 57, 67)
    },
    **{
        f"mapflow_geo.results.dataset.x__total_bounds__mutmut_{n}": (
            "the bounds array's dtype inferred (they are floats) or reshaped to (-2, 4): "
            "numpy takes any negative size as the unknown one"
        )
        for n in (7, 9, 13)
    },
    **{
        f"mapflow_geo.results.dataset.x_read_dataset__mutmut_{n}": (
            "pyarrow.dataset's format left to its default (parquet) or invalid files "
            "excluded: a dataset folder holds only its parquet parts and files whose "
            "leading underscore pyarrow skips, so there is nothing to exclude"
        )
        for n in (3, 4, 6, 7, 11)
    },
    **{
        f"mapflow_geo.results.dataset.x__publish__mutmut_{n}": (
            "a missing repaired/dropped count's default changed or dropped: every dataset's "
            "description comes from describe.description, whose QA part always holds both "
            "counts, so .get's default is never taken"
        )
        for n in (17, 19, 22, 26, 28)
    },
    "mapflow_geo.results.dataset.x_write_frame_dataset__mutmut_18": (
        "to_crs(4327) for 4326: WGS 84 3-D gives the same longitude and latitude (and keeps "
        "heights), and the frame's CRS is never written (every part declares EPSG:4326)"
    ),
    "mapflow_geo.results.dataset.x_write_frame_dataset__mutmut_25": (
        'argsort kind "STABLE": numpy reads a sort kind by its first letter in either case'
    ),
    **{
        f"mapflow_geo.results.dataset.x_write_frame_dataset__mutmut_{n}": (
            "the description's schema taken from another slice of the table (all of it, its "
            "first row, none from row 1): only the schema is used, and with_bbox's schema "
            "does not depend on the rows"
        )
        for n in (37, 38, 39, 40, 41)
    },
    **{
        name: (
            "write_summary's schema as None: it is used only when there is no part, and "
            "these calls always pass at least one part (whose own schema is read instead)"
        )
        for name in (
            "mapflow_geo.results.dataset.x_write_frame_dataset__mutmut_87",
            "mapflow_geo.results.dataset.x__write_empty__mutmut_29",
        )
    },
    **{
        name: (
            "DatasetInfo's path as None while building: _publish sets info.path to the "
            "dataset folder after the build, and nothing reads it before"
        )
        for name in (
            "mapflow_geo.results.dataset.x_write_frame_dataset__mutmut_98",
            "mapflow_geo.results.dataset.x__write_empty__mutmut_44",
        )
    },
    "mapflow_geo.results.dataset.x__write_empty__mutmut_21": (
        "the empty part's geometry types as None: PartWriter.add returns before reading "
        "them when the table has no row, so the part's types stay empty"
    ),
    **{
        f"mapflow_geo.results.dataset.x__write_empty__mutmut_{n}": (
            "the empty dataset's summary bounds as None or five NaNs: geo_metadata writes a "
            "bbox only for finite bounds: neither writes one, as four NaNs write none"
        )
        for n in (31, 42)
    },
    "mapflow_geo.run.store.x_load_result__mutmut_8": (
        "Journal(lock=None) for lock=False: the journal uses the flag only as a truth value"
    ),
    "mapflow_geo.run.store.x__params__mutmut_2": (
        "params.json read in the locale's encoding: json.dumps writes it in ASCII"
    ),
    "mapflow_geo.run.store.x__params__mutmut_7": 'codec name "UTF-8" = "utf-8"',
    **{
        f"mapflow_geo.run.engine.x__run__mutmut_{n}": (
            "load_result opens the run dir's journal again (read-only) instead of taking "
            "the open one (journal None, or left out: None is its default): every write is "
            "committed before runner.run() returns and both list the records in key "
            "order, so the tables are the same"
        )
        for n in (105, 110)
    },
    **{
        f"mapflow_geo.run.engine.x__run__mutmut_{n}": (
            "the side pool of the account reads sized 3 or the default (min(32, cores + 4)) "
            "instead of 2: it is given at most two tasks, which run at once either way"
        )
        for n in (32, 34, 36)
    },
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_create_planned__mutmut_{n}": (
            "CREATED records left out of the scan for records whose key left the plan: a "
            "key leaves the plan only when re-planned, which only follows a refused "
            "create (never created), so no CREATED record is ever missing from it"
        )
        for n in (5, 8)
    },
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_update__mutmut_{n}": (
            "getattr on a listed processing without its None default: the listing and "
            "processings.get give Processing models, whose messages, cost and "
            "percent_completed are fields with defaults, always present"
        )
        for n in (10, 18, 38)
    },
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_{n}": (
            "the fallback to the processing's only tile when no tile was found for an AOI: "
            "tile_for finds no tile only for an AOI without geometry among several tiles, "
            "and for one tile it returns that tile; so the fallback never runs (its body "
            "mutated) or assigns the same tile id (the condition widened)"
        )
        for n in (68, 69, 72, 73, 74, 137, 138, 141, 142, 143)
    },
    "mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_21": (
        "a Polygon body is one polygon part, hence one tile: len(pos) is always 1 there"
    ),
    "mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_50": (
        "_per_aoi set to None instead of False: it is only ever read for its truth"
    ),
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_{n}": (
            "getattr on a listed AOI without its default: the client's Aoi model has status "
            "and messages as fields with defaults, always present"
        )
        for n in (111, 114, 133)
    },
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_store_per_aoi__mutmut_{n}": (
            "zip over todo and its futures without strict=True: one future per todo item"
        )
        for n in (45, 48, 49)
    },
    "mapflow_geo.run.engine.xǁRunnerǁ_store_per_aoi__mutmut_61": (
        "_per_aoi set to None instead of False: it is only ever read for its truth"
    ),
    "mapflow_geo.run.engine.xǁRunnerǁ_predict__mutmut_8": (
        "getattr(proc, 'percent_completed') without its None default: the listing and "
        "processings.get give Processing models, where it is a field with a default"
    ),
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_predict__mutmut_{n}": (
            "a Sighting's last_at set to None: the field is never read"
        )
        for n in (29, 40)
    },
    "mapflow_geo.run.engine.xǁRunnerǁ_predict__mutmut_48": (
        "now >= t0 instead of now > t0: at now == t0 the eta is now + 0.0 == now, which "
        "the eta > now test rejects as before"
    ),
    "mapflow_geo.run.engine.xǁRunnerǁ_predict__mutmut_61": (
        "eta <= best instead of eta < best: on a tie best is set to the same value"
    ),
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_collect__mutmut_{n}": (
            "_submitted.pop(key) with no or a None default: _act records every key in "
            "_submitted before it puts the key in pending, so the key is always there"
        )
        for n in (5, 7)
    },
    "mapflow_geo.run.engine.xǁRunnerǁ_sweep__mutmut_37": (
        "a sweep stopped early said complete: it stops early only when no record awaits "
        "adoption (want_intents False), and then its completeness is never read"
    ),
    "mapflow_geo.run.engine.xǁRunnerǁ_store_by_tile__mutmut_3": (
        "the OK downloads of every processing, not only this one's, taken from the tiles "
        "to store: a processing's downloads carry its own tiles' ids (or None), and tile "
        "ids are unique across a run's plan (a hash of the unique row label and the "
        "geometry; a re-planned piece hashes its parent tile's id), so no other "
        "processing's download names a tile of this one"
    ),
    **{
        f"mapflow_geo.run.fetch.x_tiles_of__mutmut_{n}": (
            "the no-tile marks without dtype=np.intp: numpy gives the fill value -1 its "
            "default integer type, which holds the same tile positions, only compared "
            "and used as indices"
        )
        for n in (15, 18)
    },
    "mapflow_geo.run.fetch.x_tiles_of__mutmut_20": (
        'the "no tile yet" mark -2 for -1: tile positions are never negative, both are '
        "found by at < 0 and every one is replaced by the nearest tile"
    ),
    **{
        f"mapflow_geo.run.fetch.x__parse_by_tile__mutmut_{n}": (
            "zip(strict=) of a frame's tile_id and row columns: two columns of one frame "
            "always have the same length"
        )
        for n in (17, 20, 25)
    },
    "mapflow_geo.run.fetch.x_tile_for__mutmut_6": (
        "getattr(aoi, 'geometry') without a default: every caller passes Aoi records "
        "(client.processings.aois), which always have the field"
    ),
    "mapflow_geo.run.prepare.x_digest__mutmut_3": (
        "bytes hashed through json.dumps(default=jsonable), i.e. their repr, instead of as "
        "they are: still one-to-one, and each part has a fixed type in its place"
    ),
    "mapflow_geo.run.prepare.x_fingerprint_of__mutmut_5": (
        "shapely.to_wkb without hex=False: False is its default"
    ),
    "mapflow_geo.run.prepare.x_fingerprint_of__mutmut_10": (
        'the WKB of the areas joined with b"XXXX" between them: WKB is self-delimiting, '
        "so the same areas still give the same bytes and other areas other bytes"
    ),
    **{
        f"mapflow_geo.run.prepare.x_fingerprint_of__mutmut_{n}": (
            "the name of a one-key part of the fingerprint changed: the same value under "
            "another fixed name identifies the host or account just as well"
        )
        for n in (12, 13, 16, 17)
    },
    "mapflow_geo.run.prepare.x_fingerprint_of__mutmut_14": (
        "the host upper-cased instead of lower-cased: either folds the case, and "
        "urlsplit().hostname is lower case already"
    ),
    **{
        f"mapflow_geo.run.prepare.x_api_host__mutmut_{n}": (
            'another default for a missing base_url (None, "XXXX") or for an empty one '
            '("XXXX"): neither splits to a host name, as "" does not'
        )
        for n in (6, 12, 13)
    },
    "mapflow_geo.run.prepare.x_api_host__mutmut_9": (
        "getattr(client, 'base_url') without a default: every RunClient has base_url"
    ),
    **{
        f"mapflow_geo.run.prepare.x_account_of__mutmut_{n}": (
            'status "" instead of None when it is not (or cannot be) read: "" has no raw '
            "nor email either"
        )
        for n in (1, 21)
    },
    **{
        f"mapflow_geo.run.prepare.x_account_of__mutmut_{n}": (
            "getattr without a default for client.account or account.status: every "
            "RunClient has an account API with status()"
        )
        for n in (7, 12)
    },
    "mapflow_geo.run.prepare.x_account_of__mutmut_50": (
        "the account's e-mail or id upper-cased instead of lower-cased: either folds the "
        "case, so the same account gets one identity and two accounts two"
    ),
    **{
        f"mapflow_geo.run.prepare.x_account_of__mutmut_{n}": (
            "client._secrets looked up or called without a fallback: every RunClient has _secrets"
        )
        for n in (57, 62)
    },
    "mapflow_geo.run.prepare.x_account_of__mutmut_66": (
        "a client with no secret and no named account known by the digest of no forms "
        "instead of None: only fingerprint_for uses it, which then hashes one constant "
        "part more; runs are told apart exactly as before"
    ),
    "mapflow_geo.run.prepare.x_account_of__mutmut_19": (
        "status(refresh=None) for refresh=False: the account API reads the flag only as "
        "a truth value"
    ),
    "mapflow_geo.run.prepare.x_estimate_processings__mutmut_15": (
        "zip without strict=False: False is zip's default"
    ),
    **{
        f"mapflow_geo.run.prepare.x_estimate_processings__mutmut_{n}": (
            "zip(strict=None or True) over the processings to ask and pool.map's answers "
            "for them: one answer per processing, always of one length"
        )
        for n in (12, 22)
    },
    **{
        f"mapflow_geo.run.prepare.x_shared_part__mutmut_{n}": (
            "the parent's name or geometry left in the shared base: both callers pass it "
            "to build_processing, which sets both again, last and in that order, as in the "
            "parent's body, so every piece's body is the same dict, key order included"
        )
        for n in (3, 4, 5, 6)
    },
    **{
        f"mapflow_geo.run.prepare.x_shared_part__mutmut_{n}": (
            "another default (None, or another text) for a body without a name: every "
            "processing's body is built by _build or build_processing, which name it"
        )
        for n in (14, 16, 19, 20)
    },
    **{
        f"mapflow_geo.run.monitor.x__create_template__mutmut_{n}": (
            "zip(strict=False, None or left out) over the tiles' geometry and tile_id: columns of "
            "one frame, always of one length"
        )
        for n in (39, 42, 45)
    },
    **{
        f"mapflow_geo.run.monitor.x__create_template__mutmut_{n}": (
            "_create_template's return value replaced: monitor() never reads it (the Monitor "
            "it returns reads the template id from the journal)"
        )
        for n in (33, 124)
    },
    **{
        f"mapflow_geo.run.monitor.x__create_template__mutmut_{n}": (
            "the template intent written under another key (None, or renamed): nothing reads "
            "template_intent"
        )
        for n in (68, 72, 73)
    },
    "mapflow_geo.run.monitor.x__create_template__mutmut_74": (
        "the template intent's value hashed from None instead of the name: nothing reads "
        "it (a resumed monitor looks the template up by its journalled template_name)"
    ),
    "mapflow_geo.run._files.x_parquet_intact__mutmut_28": (
        "the tail read to the end instead of 4 bytes: it starts 4 bytes before the end "
        "of a published file, which nothing appends to (results land by atomic rename)"
    ),
}

#: A mutant whose only change is the case of an SQL statement (mutmut lower-cases string
#: literals): SQL keywords and these table and column names are case-insensitive, and the
#: statements it applies to hold no quoted text of their own.
_SQL = re.compile(r"\b(SELECT|UPDATE|INSERT|DELETE|CREATE|WHERE|FROM|SET|COALESCE)\b")


def sql_case_only(diff: str) -> bool:
    """Whether ``diff`` (the -/+ lines of a mutant) only changes an SQL string's case."""
    old = [ln[1:] for ln in diff.splitlines() if ln.startswith("-")]
    new = [ln[1:] for ln in diff.splitlines() if ln.startswith("+")]
    return (
        len(old) == len(new) >= 1
        and all(a != b and a.lower() == b.lower() for a, b in zip(old, new, strict=True))
        and all(_SQL.search(a) and "'" not in a.replace("''", "") for a in old)
    )


#: Survivors that are not equivalent but that no test can see, with the reason; they
#: still count against the kill rate.
UNSEEABLE: dict[str, str] = {
    # a log line's wording wrapped in XX (its format and arguments kept): what it says
    # (ids, keys, numbers, the error) is unchanged, and tests check a message's facts
    # against what happened, not its wording
    **{
        f"mapflow_geo.run.{name}": "a log line's wording wrapped in XX; its facts unchanged"
        for name in (
            "create.xǁCreatorǁcreate__mutmut_39",
            "create.xǁCreatorǁ_send__mutmut_41",
            "create.xǁCreatorǁreplan__mutmut_83",
            "create.xǁCreatorǁadopt__mutmut_50",
            "create.xǁCreatorǁ_unexplained_charge__mutmut_10",
            "create.xǁCreatorǁ_unexplained_charge__mutmut_28",
            "create.xǁCreatorǁ_unexplained_charge__mutmut_30",
            "engine.xǁRunnerǁ_act__mutmut_15",
            "engine.xǁRunnerǁ_store_by_tile__mutmut_42",
            "engine.xǁRunnerǁ_store__mutmut_43",
            "engine.xǁRunnerǁ_check_stored__mutmut_25",
            "engine.xǁRunnerǁ_run__mutmut_54",
            "engine.xǁRunnerǁ_collect__mutmut_30",
            "engine.x__run__mutmut_8",
        )
    },
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_{n}": (
            "the fallback tile for an AOI listed without geometry among several tiles: "
            "the simulator always lists an AOI's geometry"
        )
        for n in (70, 71, 139, 140)
    },
    "mapflow_geo.run.engine.xǁRunnerǁ_fetch__mutmut_51": (
        "results per AOI still tried after the AOI listing was refused: only differs for "
        "a service that refuses one processing's AOI listing and lists another's"
    ),
    **{
        f"mapflow_geo.run.engine.xǁRunnerǁ_store_per_aoi__mutmut_{n}": (
            "the AOI pool's size or thread names: the run's semaphore bounds its downloads "
            "to max_workers either way, and nothing reads thread names"
        )
        for n in (21, 32, 33, 34, 35, 36, 37)
    },
    "mapflow_geo.tiling.x__cumulative_area__mutmut_83": (
        "a zero-area profile returned instead of None: only for a polygon whose equal-area "
        "image has no area, and rows without area are refused before planning"
    ),
    "mapflow_geo.tiling.x__cell_width_deg__mutmut_47": (
        "the last shrink loop on >= instead of >: differs only when a cell's computed "
        "geodesic area equals cap * (1 - 1e-9) exactly; its width comes out of an "
        "iterated calibration that no input can pin"
    ),
    "mapflow_geo.tiling.x__strip_alternative__mutmut_2": (
        "no strips tried for a grid of 2 pieces: they pack into one processing (then "
        "k0 >= 2 stops the search) or into two because the polygon breaks a rule, and "
        "its strips then need >= 2 processings of >= 2 pieces, never strictly fewer; "
        "only float noise at the limit (the strips' union measured <= cap, the whole "
        "polygon > cap) differs"
    ),
    "mapflow_geo.tiling.x__merge_slivers__mutmut_85": (
        "a neighbour with a shared border of length 0 as a candidate: one with a "
        "positive border always ranks first, and pieces of a row meeting at points only "
        "union to a MultiPolygon, refused either way; only float noise overlapping two "
        "pieces across a cut could merge them"
    ),
    **{
        f"mapflow_geo.results.dataset.x_stream_class_sums__mutmut_{n}": (
            "the spill folder removed without ignore_errors: removal fails only if "
            "something else holds or changes that folder during the call (an NFS client's "
            "open file); a folder mkdtemp made and only the call wrote is always removed"
        )
        for n in (46, 48, 49)
    },
    "mapflow_geo.run.monitor.xǁMonitorǁ_record__mutmut_15": (
        "a template processing without an area recorded as 1 m² instead of 0: the service "
        "states every processing's area, and an AOI's is never 0"
    ),
    **{
        f"mapflow_geo.run.monitor.xǁMonitorǁ_record__mutmut_{n}": (
            "a later look's cost not recorded (the first look's kept): the simulator never "
            "changes a processing's cost after creating it"
        )
        for n in (39, 43)
    },
    "mapflow_geo.run.monitor.x__state__mutmut_2": (
        "no date but stored pieces: needs a fetched processing without an imagery date; "
        "the simulator names every processing a template starts with its scene's date"
    ),
    "mapflow_geo.run.monitor.x__date_of__mutmut_33": (
        "a processing with no date in its name or parameters and no creation time fails "
        "instead of being undated: every processing the service lists carries `created`"
    ),
    **{
        f"mapflow_geo.run.journal.xǁJournalǁ_commit_intents__mutmut_{n}": (
            "intents committed with synchronous=NORMAL instead of FULL: a killed process "
            "(SIGKILL) loses nothing either way, only a power cut or an OS crash would"
        )
        for n in (1, 2)
    },
    **{
        f"mapflow_geo.run.journal.xǁ_GroupCommitǁsubmit__mutmut_{n}": (
            "the leader's flag never set: callers commit their own batches instead of waiting "
            "for the leader's; each intent is still on disk before its caller returns, only "
            "the sharing of fsyncs is lost, and no test can force two callers into one window"
        )
        for n in (8, 9)
    },
    **{
        f"mapflow_geo.run.store.x__merge_stored__mutmut_{n}": (
            "the mid_merge failpoint misnamed: only the crash campaigns arm failpoints, in "
            "child processes that import the installed package, not the mutant (in-process, "
            "the armed failpoint would SIGKILL the test itself)"
        )
        for n in (18, 19, 20)
    },
    **{
        f"mapflow_geo.run.store.x_apply_stored_plan__mutmut_{n}": (
            "a resumed run's re-planned pieces taken unsorted (in the stored plan's order): "
            "only the order of their creates changes, which nothing specifies; what is "
            "created, charged, stored and shown (res.processings follows the journal) is "
            "the same"
        )
        for n in (22, 32)
    },
    "mapflow_geo.run.store.x__tiles__mutmut_50": (
        "a tile with no download and an OK processing shown with its processing's messages: "
        "the simulator gives an OK processing no messages"
    ),
    **{
        f"mapflow_geo.results.stitch.xǁTilePlanǁ{name}": (
            "every tile taken as a non-rectangle (its box area, type or rings misread), or "
            "rectangles measured as the others too: shapely.dwithin on the tile's boundary "
            "decides instead of the arithmetic on bounds, which gives the same answer for "
            "every piece in or across its tile and for every box; they differ only for a "
            "piece wholly outside its rectangular tile, off a corner, where the bounds "
            "over-approximate its distance"
        )
        for name in (
            *(f"__init____mutmut_{n}" for n in (31, 32, 33, 34, 35, 37, 42, 43)),
            "_near__mutmut_26",
        )
    },
    "mapflow_geo.results.stitch.x__edge_pairs__mutmut_124": (
        "a gap between cut edges of exactly 2·SEAM_EPS_DEG refused: the envelope query "
        "(grown by ε) pairs axis-aligned cut edges only within ε, and slanted ones give no "
        "gap that is exactly that float"
    ),
    **{
        f"mapflow_geo.results.stitch.x_union_by_group__mutmut_{n}": (
            "argsort of the group labels not stable: a group's members are unioned in "
            "another order, the same shape up to the order of its vertices and float "
            "rounding where members cross; every consumer compares shapes"
        )
        for n in (3, 5)
    },
    "mapflow_geo.results.stitch.x__nearest_across__mutmut_33": (
        "a cut edge exactly _GAP_TIE_DEG farther than the nearest: a float equality"
    ),
    "mapflow_geo.results.changes._identical.x_same_outlines__mutmut_25": (
        "areas differing by exactly the filter's bound (a float) left to the overlay"
    ),
    **{
        f"mapflow_geo.results.changes._rule.{name}": (
            "the group's (or the lone object's) local frame centred elsewhere (its scale, the "
            "latitude's, unchanged): lengths, distances and areas do not depend on the "
            "origin; only float rounding of coordinates thousands of km long changes them, "
            "by under 1e-6 m"
        )
        for name in (
            *(f"x__beyond__mutmut_{n}" for n in (24, 25, 26, 27, 28)),
            *(f"x__local_pairs__mutmut_{n}" for n in (2, 3, 4, 5, 6)),
        )
    },
    "mapflow_geo.results.changes._rule.x__near_and_beyond__mutmut_36": (
        "a lone object small when its area is below area_change_m2, not at it: differs only "
        "for an area in the object's own local frame exactly equal to the threshold (a "
        "float equality of a projected area; 0 m² objects are thin either way)"
    ),
    "mapflow_geo.results.changes._rule.x__near_and_beyond__mutmut_39": (
        "a lone object thin when its mean width is below tolerance_m, not at it: differs "
        "only for 2 · area exactly tolerance · perimeter in the object's own local frame (a "
        "float equality of projected lengths; at tolerance 0 only a 0 m² object, small anyway)"
    ),
    **{
        f"mapflow_geo.results.changes._rule.x_classify__mutmut_{n}": (
            "a side counted as nothing below area_change_m2, not at it: differs only for a "
            "side summing to exactly the threshold (a float equality); at 0 m² only an "
            "empty side, which n_before / n_after == 0 decide already"
        )
        for n in (9, 11)
    },
    **{
        f"mapflow_geo.results.changes._rule.x_classify__mutmut_{n}": (
            "the rebuild clause at its bounds (tolerant IoU at most min_iou, or moved at "
            "least area_change_m2): differs only at exact float equalities of summed areas; "
            "at min_iou 1 or area_change_m2 0 the other half of the clause decides alike"
        )
        for n in (77, 78)
    },
    "mapflow_geo.results.changes._rule.x__pieces__mutmut_15": (
        "a piece small when its area is below area_change_m2, not at it: differs only for "
        "an object whose area (degrees² times the scale at its latitude) is exactly the "
        "threshold, a float equality"
    ),
    "mapflow_geo.results.changes._rule.x__beyond__mutmut_80": (
        "the vertex shortcut for a Hausdorff distance below the tolerance, not at it: "
        "differs only at an exact float equality of a distance in the group's local frame "
        "(at tolerance 0: outlines on each other's vertices, where the buffers find 0 m² "
        "up to rounding too)"
    ),
    **{
        f"mapflow_geo.results.changes._rule.{name}": (
            "the tolerance's buffer drawn with 5 or 8 segments a quarter circle instead of 4: "
            "the area beyond the tolerance changes by under 0.1 m² a corner; DESIGN.md fixes "
            "no resolution and no case sits that close to a threshold"
        )
        for name in (
            *(f"x__beyond__mutmut_{n}" for n in (99, 100, 107, 108)),
            *(f"x__near_and_beyond__mutmut_{n}" for n in (48, 53)),
        )
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__edges__mutmut_{n}": (
            "edges sorted by owner without a stable sort: a polygon's own edges in another "
            "order, which the kernel sums over; only float rounding of its sums changes"
        )
        for n in (117, 119)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__ring_edges__mutmut_{n}": (
            "a ring's orientation measured about another vertex (of the ring, or of another "
            "ring or geometry of the batch): the shoelace sum does not depend on the origin; "
            "rounding could flip its sign only for a ring of under ~1e-19 deg² (1e-9 m²), "
            "which no valid outline has"
        )
        for n in (15, 16, 19, 20, 22)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the scale of the parallel test smaller (a term subtracted): near-parallel "
            "edges it no longer calls parallel cross within both only when they are also "
            "within the collinear tolerance, where a vertex of one lies on the other and the "
            "pair is declined (on, not crossing) either way"
        )
        for n in (52, 53, 54)
    },
    "mapflow_geo.results.changes._overlay.x__kernel__mutmut_81": (
        "edges whose cross product equals the parallel tolerance exactly (a float "
        "equality) not called parallel"
    ),
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "an edge parameter exactly at a bound of the on-edge or crossing test (-ε, ε, "
            "1 - ε, 1 + ε) taken the other way: a float equality"
        )
        for n in (89, 91, 94, 96, 104, 105, 108, 109, 121)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "an edge's inside share not clipped to [0, 1] (or clipped at 2): the exact share "
            "lies in [0, 1]; only float noise of about 1e-16 goes past, and the area moves "
            "by that rounding"
        )
        for n in (185, 186, 198, 201, 202, 214)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x_intersection_areas__mutmut_{n}": (
            "the pair's coordinates shifted to another corner of its bounds (or a latitude "
            "as the x origin): the shoelace sums do not depend on the origin; only float "
            "rounding changes, far below any area compared"
        )
        for n in (24, 25)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x_intersection_areas__mutmut_{n}": (
            "pairs routed to GEOS instead of the kernel (every pair, the first, or those of "
            "exactly _MAX_EDGE_PAIRS edge pairs): GEOS gives the same areas up to float "
            "rounding; only slower"
        )
        for n in (21, 22, 45, 61)
    },
    **{
        f"mapflow_geo.results.changes._overlay.x__kernel__mutmut_{n}": (
            "the collinear test's cross product with a division: it stops flagging "
            "overlapping parallel edges (whose shared vertex on the other's edge declines the "
            "pair anyway), or flags parallel edges apart only within 1e-16 of a quotient "
            "that coordinates rounded to 7e-15° cannot reach"
        )
        for n in (119, 120)
    },
    "mapflow_geo.results.changes._overlay.x__kernel__mutmut_246": (
        "a pair declined only with two bad edge pairs: a vertex on the other's edge is bad "
        "for both its edges unless it lies within ε of the shorter's length and beyond ε of "
        "the longer's, under 1e-17° for real edges, below the coordinates' float resolution"
    ),
    "mapflow_geo.results.changes._overlay.x__ring_edges__mutmut_54": (
        "a ring whose signed area is exactly 0.0 taken as counter-clockwise: a float "
        "equality no ring of a valid outline of positive area reaches"
    ),
    "mapflow_geo.run.prepare.x_check_budget__mutmut_45": (
        "area >= remaining instead of >: differs only when the geodesic area in m² (a float) "
        "equals the integer m² the service reports"
    ),
    "mapflow_geo.run.fetch.x_tile_for__mutmut_23": (
        "an AOI matched by distance alone instead of 'the first tile within 1e-9° of its "
        "point': differs only when that point, inside its own tile, lies within 1e-9° "
        "(0.1 mm) of an earlier tile, i.e. in an AOI under 2e-9° wide there; the "
        "distance rule then picks the AOI's own tile, the better answer of the two"
    ),
}


def _slug(module: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", module.removesuffix(".py")).strip("_")


#: Tests in the listed files that run the package in a child process: the child imports
#: the mutated copy without mutmut's configuration and fails whatever the mutant.
CHILD_PROCESS_TESTS = [
    "tests/run/test_progress.py::test_the_demo_shows_progress_and_says_what_it_wrote",
]


def _deselected() -> list[str]:
    return [arg for test in CHILD_PROCESS_TESTS for arg in ("--deselect", test)]


def _config(modules: list[str], tests: list[str]) -> str:
    def arr(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["mapflow_geo"]\n'
        f"only_mutate = {arr(modules)}\n"
        f"pytest_add_cli_args_test_selection = {arr(tests)}\n"
        "pytest_add_cli_args = "
        + arr(["-p", "no:cacheprovider", "-q", "-p", "mutmut_order"] + _deselected())
        + "\n"
        # mutmut runs the tests from its mutants/ copy: the files they read go there too
        'also_copy = ["data"]\n'
    )


def _scratch(modules: list[str]) -> Path:
    """``build/mutmut/<module>[+<module>...]``: fresh sources and tests, mutmut's cache
    kept."""
    work = ROOT / "build" / "mutmut" / "+".join(_slug(m) for m in modules)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("mapflow_geo", "tests", "data"):  # data: the tests' sample areas
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(
            ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    # the plugin that orders each mutant's tests, in a folder of its own on PYTHONPATH
    (work / "plugins").mkdir(exist_ok=True)
    shutil.copy(ROOT / "tools" / "mutmut_order.py", work / "plugins" / "mutmut_order.py")
    tests = list(dict.fromkeys(t for m in modules for t in MODULES[m]))
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\][^\[]*", "\n", text)  # ours replaces any other
    (work / "pyproject.toml").write_text(text + _config(modules, tests))
    return work


def _verdicts(work: Path, module: str) -> dict[str, str]:
    """mutmut's verdict on each of ``module``'s mutants ("killed", "survived", "not
    checked", ...), read from the run's record of exit codes."""
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
    return {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}


def _diff(work: Path, env: dict, name: str) -> str:
    out = subprocess.run(
        [str(MUTMUT), "show", name], cwd=work, env=env, capture_output=True, text=True
    ).stdout
    return "\n".join(
        ln for ln in out.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    )


def _all_mutants(work: Path, module: str) -> list[str]:
    """Every mutant mutmut generates for ``module``, by its full name."""
    code = (
        "import json, sys\n"
        "from mutmut.mutation.file_mutation import mutate_file_contents\n"
        "p = sys.argv[1]\n"
        "print(json.dumps(mutate_file_contents(p, open(p).read()).mutant_names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, module], cwd=work, capture_output=True, text=True, check=True
    ).stdout
    prefix = module.removesuffix(".py").replace("/", ".")
    return [f"{prefix}.{name}" for name in json.loads(out)]


def sample_of(names: list[str], size: int, seed: int) -> list[str]:
    """A simple random sample of ``size`` mutants (all when there are fewer), the same for
    the same names and seed: what the run judges stands for the module's every mutant."""
    if size >= len(names):
        return sorted(names)
    return sorted(random.Random(seed).sample(sorted(names), size))


def _report(work: Path, env: dict, module: str) -> dict:
    """Print ``module``'s survivors with their diffs and its kill rate."""
    verdicts = _verdicts(work, module)
    alive = sorted(m for m, v in verdicts.items() if v == "survived")
    diffs = {m: _diff(work, env, m) for m in alive}
    reasons = {m: EQUIVALENT[m] for m in alive if m in EQUIVALENT}
    reasons.update({m: "the case of an SQL statement" for m in alive if sql_case_only(diffs[m])})
    equivalent = [m for m in alive if m in reasons]
    real = [m for m in alive if m not in reasons]
    for m in alive:
        if m in reasons:
            print(f"-- {m}: equivalent ({reasons[m]})")
        else:
            print(
                f"-- {m}: SURVIVED"
                + (f" (no test can see it: {UNSEEABLE[m]})" if m in UNSEEABLE else "")
            )
        print(diffs[m])
    counts = {v: sum(1 for x in verdicts.values() if x == v) for v in set(verdicts.values())}
    # mutants with a verdict (--only and --sample leave the others unchecked)
    tested = len(verdicts) - counts.get("not checked", 0)
    counted = tested - len(equivalent)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    rate = killed / counted if counted else 1.0
    print(
        f"== {module}: {tested} of {len(verdicts)} mutants tested, "
        f"{killed} killed ({counts.get('timeout', 0)} by timeout), "
        f"{len(equivalent)} equivalent, {len(real)} surviving, "
        f"{counts.get('no tests', 0)} not reached by the tests; "
        f"kill rate {rate:.1%} of {counted} non-equivalent",
        flush=True,
    )
    return {"module": module, "counts": counts, "equivalent": equivalent, "survived": real}


def run_modules(
    modules: list[str], only: list[str], sample: int | None = None, seed: int = 0
) -> list[dict]:
    """One mutmut session over ``modules`` (their tests mapped and run clean once)."""
    work = _scratch(modules)
    if sample is not None:
        only = []
        for module in modules:
            everyone = _all_mutants(work, module)
            only += sample_of(everyone, sample, seed)
            print(
                f"== {module}: a random sample of {min(sample, len(everyone))} of "
                f"{len(everyone)} (seed {seed})"
            )
    # mutmut puts its mutated copy first on sys.path itself; a PYTHONPATH (the checkout,
    # or the copy) hides from it which tests reach which function: no mutant is tested
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    env["PYTHONPATH"] = str(work / "plugins")  # only the plugin that orders the tests
    children = os.environ.get("MUTMUT_CHILDREN", "2")
    cmd = [str(MUTMUT), "run", "--max-children", children, *only]
    for module in modules:
        print(f"== {module}: {' '.join(MODULES[module])}", flush=True)
    with open(work / "run.log", "w") as log:
        subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return [_report(work, env, module) for module in modules]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="module paths (default: every one of MODULES)")
    ap.add_argument("--only", action="append", default=[], help="mutant name glob(s)")
    ap.add_argument("--list", action="store_true", help="print the modules and their tests")
    ap.add_argument(
        "--sample", type=int, metavar="N", help="judge a random sample of N mutants per module"
    )
    ap.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    ap.add_argument(
        "--together",
        action="store_true",
        help="one mutmut session for all the modules given (their tests mapped once)",
    )
    args = ap.parse_args(argv)
    if args.list:
        for module, tests in MODULES.items():
            print(module, " ".join(tests))
        return 0
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    if args.together:
        results = run_modules(modules, args.only, args.sample, args.seed)
    else:
        results = [r for m in modules for r in run_modules([m], args.only, args.sample, args.seed)]
    return 1 if any(r["survived"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
