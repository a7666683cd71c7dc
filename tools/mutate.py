# ruff: noqa: E501  (the mutants are exact code snippets; lines as in the source)
"""Mutation testing of the guarantee functions: ``make mutate-named`` (``python tools/mutate.py``).

Each mutant below is a realistic, hand-written bug in a function that carries one of the
project's promises (docs/reliability.md): the create/adopt decisions of the runner
(``run/create.py``, and its listing sweep in ``run/engine.py``), the journal's ordering
(``run/journal.py`` and its use when creating and storing), the seam rule
(``results/stitch.py``), the tiling limits (``tiling.py``), the budget checks for every
billing type (``run/prepare.py``) and redaction (``_secrets.py``). For each one the tool

1. copies the working tree's ``mapflow_geo/``, ``tests/`` and ``pyproject.toml`` to a
   scratch folder (the checkout itself is never changed, so other work on it goes on);
2. replaces one exact snippet of one file there (the snippet must occur exactly once,
   else the mutant is reported ``stale``: the code moved on and the list needs care);
3. runs the test files that guard that module, ``pytest -x -q``, with the copy first
   on ``PYTHONPATH`` (child processes of the tests import the copy too);
4. restores the file and reports the mutant ``killed`` (a test failed) or ``survived``.

A baseline run of every test file involved, unmutated, comes first and must pass.

Usage::

    python tools/mutate.py                 # every mutant
    python tools/mutate.py --list          # ids and descriptions
    python tools/mutate.py engine-grace stitch-row   # some, by id (or prefix: stitch)
    python tools/mutate.py --json out.json # also write the results
    make mutate-named MUTANTS="budget secrets"   # the same through make

Generated mutants (every operator, constant and argument of a module, by mutmut) are
``make mutate MODULE=...`` (``tools/mutmut_module.py``). The two are complementary:
mutmut finds what no test looks at, line by line; the mutants here are whole bugs that
would break a promise (an intent journalled after the create, a grace period ignored)
and replay the crash campaigns that catch them, which generated mutants cannot ask for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Mutant:
    id: str
    path: str  # file relative to the repository root
    old: str  # an exact snippet occurring once in the file
    new: str
    tests: list[str]  # pytest arguments (files, node ids, -k expressions)
    why: str
    more: list[tuple[str, str]] = field(default_factory=list)  # further (old, new) pairs
    status: str = ""
    seconds: float = 0.0
    detail: list[str] = field(default_factory=list)


# The tests guarding each module (bounded: no long campaigns such as the soak).
T_ENGINE = [
    "tests/rules/test_mutants.py",
    "tests/run/test_runner.py",
    "tests/reliability/test_create_outcomes.py",
    "tests/reliability/test_crash_points.py",
    "tests/reliability/test_cut_listings.py",
]
T_JOURNAL = ["tests/rules/test_mutants.py", "tests/run/test_journal.py",
             "tests/reliability/test_crash_points.py", "tests/run/test_runner.py"]  # fmt: skip
T_STITCH = [
    "tests/rules/test_mutants.py",
    "tests/results/test_stitch_props.py",
    "tests/results/test_results.py",
]
T_TILING = ["tests/geometry/test_tiling.py", "tests/geometry/test_tiling_props.py"]
T_BUDGET = ["tests/rules/test_mutants.py", "tests/run/test_runner.py"]
T_SECRETS = [
    "tests/base/test_secrets_module.py",
    "tests/rules/test_mutants.py",
    "tests/api/test_http.py",
]

E, J, S = "mapflow_geo/run/engine.py", "mapflow_geo/run/journal.py", "mapflow_geo/results/stitch.py"
C = "mapflow_geo/run/create.py"
TL, P, X = "mapflow_geo/tiling.py", "mapflow_geo/run/prepare.py", "mapflow_geo/_secrets.py"

# fmt: off
MUTANTS = [
    # ------------------------------------------------------------ create / adopt decisions
    Mutant(
        "engine-grace", C,
        "if self.clock() - first < self.adopt_grace_s or self._unexplained_charge(rec.key):",
        "if self._unexplained_charge(rec.key):",
        T_ENGINE, "adopt_grace_s ignored: what a complete listing lacks is re-created at once",
    ),
    Mutant(
        "engine-partial-sweep", C,
        "            if not complete:\n                continue  # a partial sweep proves nothing about absence\n",
        "",
        T_ENGINE, "absence counted from partial sweeps (polling stops early)",
    ),
    Mutant(
        "engine-sweep-pages-run-out", E,
        "return out, page is not None and page.complete",
        "return out, True",
        T_ENGINE, "a sweep counted complete when its pages run out, short of the total",
    ),
    Mutant(
        "engine-meta-any-run", C,
        "if meta.get(META_RUN) == self.run_id and META_KEY in meta:",
        "if META_KEY in meta:",
        T_ENGINE, "a processing of another run with the same key is adopted",
    ),
    Mutant(
        "engine-name-any-time", C,
        "return proc if created.timestamp() >= rec.updated_at - 60.0 else None",
        "return proc",
        T_ENGINE, "a same-named processing created long before the intent is adopted",
    ),
    Mutant(
        "engine-no-balance", C,
        "        if self._balance0 is None:\n            return False\n        try:",
        "        if True:\n            return False\n        try:",
        T_ENGINE, "the balance check (unexplained charge) never holds a re-create back",
    ),
    Mutant(
        "engine-500-is-refusal", C,
        "if exc.status >= 500:  # readable 5xx",
        "if exc.status > 500:  # readable 5xx",
        T_ENGINE, "a readable HTTP 500 on a create is taken as a refusal (nothing committed)",
    ),
    Mutant(
        "engine-ambiguous-resent", C,
        "        except AmbiguousCreateError as exc:\n"
        '            log.info("create %s: outcome unknown (%s); will reconcile by meta", key, exc)\n'
        "            self._missing_since.setdefault(key, self.clock())\n"
        "            return\n",
        "        except AmbiguousCreateError as exc:\n"
        '            log.info("create %s: outcome unknown (%s); will reconcile by meta", key, exc)\n'
        "            self.journal.mark_not_created(key, message=str(exc))\n"
        "            return self.create(key)\n",
        T_ENGINE, "an ambiguous create is sent again at once (as if refused)",
    ),
    Mutant(
        "engine-429-not-resent", C,
        "            except RateLimitError as exc:\n                attempt += 1\n",
        "            except RateLimitError as exc:\n                raise\n                attempt += 1\n",
        T_ENGINE, "a 429 on a create stops creating instead of waiting Retry-After",
    ),
    # ------------------------------------------------------------ journal ordering
    Mutant(
        "journal-intent-after-send", C,
        '        self.journal.mark_intent(key, meta=meta)  # durable before the request\n'
        '        failpoint("after_intent")\n'
        "        try:\n"
        "            created = self._send(key, proc, meta)\n",
        '        failpoint("after_intent")\n'
        "        try:\n"
        "            created = self._send(key, proc, meta)\n"
        "            self.journal.mark_intent(key, meta=meta)\n",
        T_JOURNAL, "the intent is journalled after the create is sent, not before",
    ),
    Mutant(
        "journal-resume-unchecked", E,
        "        self._check_stored()\n        known = {r.key for r in journal.records()}\n",
        "        known = {r.key for r in journal.records()}\n",
        T_JOURNAL, "stored results (not fsynced) are not checked on resume: a torn file is kept",
    ),
    Mutant(
        "journal-intent-any-state", J,
        '" updated_at=? WHERE key=? AND state IN (?, ?)"',
        '" updated_at=? WHERE key=? AND state IN (?, ?, \'created\', \'finished\')"',
        T_JOURNAL, "mark_intent moves a created or finished record back to intent",
        more=[("            if rec is not None and rec.state in (PLANNED, INTENT):\n",
               "            if rec is not None:\n")],
    ),
    Mutant(
        "journal-reopen-paid", J,
        '" WHERE status=? AND processing_id IS NULL",\n                (PLANNED, time.time()',
        '" WHERE status=?",\n                (PLANNED, time.time()',
        T_JOURNAL, "resume re-opens NOT_CREATED records by status alone, paid or not",
    ),
    Mutant(
        "journal-not-durable", J,
        "        with self._tx(sync=True) as db:\n"
        "            db.executemany(_INTENT_SQL, params)\n",
        "        with self._tx(sync=False) as db:\n"
        "            db.executemany(_INTENT_SQL, params)\n",
        T_JOURNAL, "intents are not fsynced before the create is sent",
    ),
    # ------------------------------------------------------------ stitch
    Mutant(
        "stitch-row", S,
        '_KEY_COLUMNS = ("row", "object_type", "class_id", "class")',
        '_KEY_COLUMNS = ("object_type", "class_id", "class")',
        T_STITCH, "row dropped from the stitch key: objects of two input rows merge",
    ),
    Mutant(
        "stitch-components-final-step", S,
        "    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))\n"
        "    return connected_components(graph, directed=False)[1]\n",
        "    parent = np.arange(n)\n"
        "\n"
        "    def find(x):\n"
        "        while parent[x] != x:\n"
        "            x = parent[x]\n"
        "        return x\n"
        "\n"
        "    for a, b in zip(left.tolist(), right.tolist()):\n"
        "        ra, rb = find(a), find(b)\n"
        "        if ra != rb:\n"
        "            parent[max(ra, rb)] = min(ra, rb)\n"
        "    return parent  # the final find per node is missing\n",
        T_STITCH, "union-find without its final step (labels are parents, not roots)",
    ),
    Mutant(
        "stitch-one-pass-labels", S,
        "    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))\n"
        "    return connected_components(graph, directed=False)[1]\n",
        "    labels = np.arange(n)\n"
        "    lo, hi = np.minimum(left, right), np.maximum(left, right)\n"
        "    np.minimum.at(labels, hi, labels[lo])  # one pass, not to a fixed point\n"
        "    return labels\n",
        T_STITCH, "components as one pass of label propagation",
    ),
    Mutant(
        "stitch-share", S,
        "MIN_OVERLAP_SHARE = 0.5",
        "MIN_OVERLAP_SHARE = 0.0",
        T_STITCH, "cut edges join on any overlap (neighbours overlapping by centimetres merge)",
    ),
    Mutant(
        "stitch-touching-joins", S,
        "        & (overlap > MIN_OVERLAP_DEG)\n",
        "        & (overlap >= 0.0)\n",
        T_STITCH, "cut edges that only touch at a point join (a terrace becomes one building)",
    ),
    Mutant(
        "stitch-same-tile", S,
        "    keep = (a < b) & (pos[a] != pos[b]) & (key[a] == key[b])\n"
        "    i, j = i[keep], j[keep]\n",
        "    keep = (a < b) & (key[a] == key[b])\n"
        "    i, j = i[keep], j[keep]\n",
        T_STITCH, "pieces of the same tile join along the tile boundary",
    ),
    Mutant(
        "stitch-lines-any-key", S,
        "    keep = (a < b) & (pos[a] != pos[b]) & (key[a] == key[b])\n"
        "    return a[keep], b[keep]\n",
        "    keep = (a < b) & (pos[a] != pos[b])\n"
        "    return a[keep], b[keep]\n",
        T_STITCH, "line pieces join across rows, types and classes",
    ),
    Mutant(
        "stitch-not-nearest", S,
        "    ok = _nearest_across(i, j, gap, pos[owner])\n",
        "    ok = np.ones(len(i), dtype=bool)\n",
        T_STITCH, "a wall within eps of a seam passes for a cut edge (no nearest-edge rule)",
    ),
    # ------------------------------------------------------------ tiling limits
    Mutant(
        "tiling-aois-off-by-one", TL,
        "        if b.count >= max_aois:\n",
        "        if b.count > max_aois:\n",
        T_TILING, "a processing may hold max_aois + 1 polygons",
    ),
    Mutant(
        "tiling-no-bbox-rule", TL,
        "    return box_area_km2(*geom.bounds) <= cap, area\n",
        "    return True, area\n",
        T_TILING, "a polygon within the area limit is kept whole whatever its bbox",
    ),
    Mutant(
        "tiling-merge-no-bbox", TL,
        "    bbox = box_area_km2(*bounds)\n    if bbox > cap:\n        return False\n",
        "    bbox = box_area_km2(*bounds)\n",
        T_TILING, "touching pieces merged without the bbox rule",
    ),
    Mutant(
        "tiling-no-margin", TL,
        "    cap = area_limit_km2 * (1.0 - float(safety_margin))\n",
        "    cap = area_limit_km2\n",
        T_TILING, "the safety margin is ignored (pieces and processings fill the limit)",
    ),
    Mutant(
        "tiling-bin-overfull", TL,
        "    if b.used + p.area > cap * (1 + 1e-12) + 1e-12:\n",
        "    if b.used > cap:\n",
        T_TILING, "a processing is filled past the limit by its last piece",
    ),
    Mutant(
        "tiling-rows-merged", TL,
        "    if any(t.row != p.row for t in group):\n        return False\n",
        "",
        T_TILING, "touching pieces of different rows are merged into one polygon",
    ),
    Mutant(
        "tiling-credit-minimum", TL,
        "    raw = max(float(area_km2), 1.0) * float(price_per_km2)\n",
        "    raw = float(area_km2) * float(price_per_km2)\n",
        T_TILING + ["tests/run/test_runner.py"], "the 1 km² minimum charge is forgotten",
    ),
    # ------------------------------------------------------------ budgets, every billing type
    Mutant(
        "budget-area-units", P,
        "        if new_area_km2 * 1e6 > status.remaining_area:\n",
        "        if new_area_km2 > status.remaining_area:\n",
        T_BUDGET, "AREA billing: km² compared with m² (never refuses)",
    ),
    Mutant(
        "budget-area-units-other-way", P,
        "        if new_area_km2 * 1e6 > status.remaining_area:\n",
        "        if new_area_km2 * 1e6 > status.remaining_area / 1e6:\n",
        T_BUDGET, "AREA billing: the remaining m² converted twice (refuses everything)",
    ),
    Mutant(
        "budget-area-skipped", P,
        '    if billing == "AREA" and status.remaining_area is not None:\n',
        '    if billing == "area" and status.remaining_area is not None:\n',
        T_BUDGET, "AREA billing: never checked (case mismatch)",
    ),
    Mutant(
        "budget-credits-off-by-one", P,
        "        if new_credits > status.remaining_credits:\n",
        "        if new_credits >= status.remaining_credits:\n",
        T_BUDGET, "CREDITS billing: exactly enough credits is refused",
    ),
    Mutant(
        "budget-credits-skipped", P,
        '    if billing == "CREDITS" and status.remaining_credits is not None:\n',
        '    if billing == "CREDIT" and status.remaining_credits is not None:\n',
        T_BUDGET, "CREDITS billing: never checked",
    ),
    Mutant(
        "budget-credits-all", P,
        "    new_credits = sum(p.estimate or 0 for p in to_create)\n",
        "    new_credits = sum(p.estimate or 0 for p in procs)\n",
        T_BUDGET, "CREDITS billing: processings already paid for are counted again on resume",
    ),
    Mutant(
        "budget-none-as-credits", P,
        '    if billing == "CREDITS" and status.remaining_credits is not None:\n',
        '    if billing in ("CREDITS", "NONE") and status.remaining_credits is not None:\n',
        T_BUDGET, "NONE billing treated as CREDITS (refuses a run that costs nothing)",
    ),
    Mutant(
        "budget-max-credits-off-by-one", P,
        "    if max_credits is not None and total > max_credits:\n",
        "    if max_credits is not None and total >= max_credits:\n",
        T_BUDGET, "max_credits equal to the estimate is refused",
    ),
    Mutant(
        "budget-max-credits-skipped", P,
        "    if max_credits is not None and total > max_credits:\n",
        "    if max_credits is not None and total > max_credits * 10:\n",
        T_BUDGET, "max_credits is not enforced on the server's estimates",
    ),
    # ------------------------------------------------------------ redaction
    Mutant(
        "secrets-decoded-and-key", X,
        "        forms += [decoded, decoded.split(\":\", 1)[1]]\n",
        "        pass\n",
        T_SECRETS, "neither the decoded email:key nor the key alone is a secret",
    ),
    Mutant(
        "secrets-key-alone", X,
        "        forms += [decoded, decoded.split(\":\", 1)[1]]\n",
        "        forms += [decoded]\n",
        T_SECRETS, "the key alone is not a secret",
    ),
    Mutant(
        "secrets-decoded", X,
        "        forms += [decoded, decoded.split(\":\", 1)[1]]\n",
        "        forms += [decoded.split(\":\", 1)[1]]\n",
        T_SECRETS, "the decoded email:key is not a secret (only the key alone)",
    ),
    Mutant(
        "secrets-quoted", X,
        "    forms += [quote(f, safe=\"\") for f in forms] + basic\n",
        "    forms += basic\n",
        T_SECRETS, "URL-quoted spellings of the token are not secrets",
    ),
    Mutant(
        "secrets-shortest-first", X,
        "    for s in secrets:  # longest first",
        "    for s in reversed(secrets):  # longest first",
        T_SECRETS, "secrets replaced shortest first (a form is cut by a shorter one inside it)",
    ),
    Mutant(
        "secrets-words", X,
        "    if n in SECRET_NAMES or any(w in n for w in SECRET_WORDS):\n",
        "    if n in SECRET_NAMES:\n",
        T_SECRETS, "names only containing a credential word (mapboxAccessToken) are shown",
    ),
    Mutant(
        "secrets-query-key", X,
        "    return query and n in QUERY_SECRET_NAMES\n",
        "    return False\n",
        T_SECRETS, "?key= and ?sig= URL parameters are shown",
    ),
    Mutant(
        "secrets-userinfo", X,
        '        netloc = host if drop else f"{REDACTED}@{host}"\n',
        "        netloc = netloc\n",
        T_SECRETS, "user:password@ in URLs is kept",
    ),
    Mutant(
        "secrets-auth-header", X,
        '    return _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)\n',
        "    return text\n",
        T_SECRETS, "an echoed Basic/Bearer credential of another token is kept",
    ),
]


# fmt: on


# ----------------------------------------------------------------------------- running
def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in ("mapflow_geo", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _pytest(dest: Path, args: list[str], timeout: float) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1")
    env.pop("MAPFLOW_FULL", None)
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", "-W", "ignore::DeprecationWarning", *args]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, "timeout"
    return proc.returncode, proc.stdout + proc.stderr


def _summary_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    tail = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln]
    return (lines[:1] or tail[-1:] or [out.strip().splitlines()[-1] if out.strip() else ""])[0]


def run(mutants: list[Mutant], timeout: float, baseline: bool = True) -> int:
    with tempfile.TemporaryDirectory(prefix="mapflow-mutate-") as tmp:
        dest = Path(tmp)
        _copy_tree(dest)
        # the copy, not the checkout, must be what the tests import
        probe = subprocess.run(
            [sys.executable, "-c", "import mapflow_geo; print(mapflow_geo.__file__)"],
            cwd=dest, env=dict(os.environ, PYTHONPATH=str(dest)),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert probe.stdout.strip().startswith(str(dest)), probe.stdout
        files = sorted({t.split("::")[0] for m in mutants for t in m.tests})
        t0 = time.monotonic()
        code, out = _pytest(dest, files, timeout * 3) if baseline else (0, "skipped")
        print(f"baseline ({len(files)} test files): {_summary_line(out)} "
              f"[{time.monotonic() - t0:.0f} s]", flush=True)  # fmt: skip
        if code != 0:
            print(out[-4000:])
            print("the unmutated code fails its tests: fix that first")
            return 2
        for m in mutants:
            target = dest / m.path
            original = target.read_text(encoding="utf-8")
            pairs = [(m.old, m.new), *m.more]
            counts = [original.count(old) for old, _ in pairs]
            if counts != [1] * len(pairs):
                m.status = "stale"
                m.detail = [f"snippets found {counts} times in {m.path}"]
            else:
                mutated = original
                for old, new in pairs:
                    mutated = mutated.replace(old, new)
                compile(mutated, str(target), "exec")  # a mutant is always valid Python
                target.write_text(mutated, encoding="utf-8")
                t0 = time.monotonic()
                try:
                    code, out = _pytest(dest, m.tests, timeout)
                finally:
                    target.write_text(original, encoding="utf-8")
                m.seconds = time.monotonic() - t0
                m.status = {0: "survived", -1: "timeout"}.get(code, "killed")
                m.detail = [_summary_line(out)] if code not in (0,) else []
            print(f"{m.status:8} {m.id:32} {m.seconds:6.0f} s  {m.why}"
                  + (f"\n         {m.detail[0][:160]}" if m.detail else ""), flush=True)  # fmt: skip
    killed = [m for m in mutants if m.status in ("killed", "timeout")]
    survived = [m for m in mutants if m.status == "survived"]
    stale = [m for m in mutants if m.status == "stale"]
    print(f"\nmutants: {len(mutants)}, killed {len(killed)}, survived {len(survived)}"
          + (f", stale {len(stale)}" if stale else ""))  # fmt: skip
    for m in survived:
        print(f"  survived: {m.id} ({m.path}): {m.why}")
    for m in stale:
        print(f"  stale: {m.id}: {m.detail[0]}")
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ids", nargs="*", help="mutant ids or id prefixes (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="do not run the unmutated tests first (only right after a run did)")  # fmt: skip
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.ids or any(m.id.startswith(i) for i in args.ids)]
    if args.list:
        for m in chosen:
            print(f"{m.id:32} {m.path:32} {m.why}")
        return 0
    if not chosen:
        ap.error("no mutant matches")
    rc = run(chosen, args.timeout, baseline=not args.skip_baseline)
    if args.json:
        args.json.write_text(json.dumps(
            [{"id": m.id, "path": m.path, "status": m.status, "seconds": round(m.seconds, 1),
              "why": m.why, "tests": m.tests, "detail": m.detail} for m in chosen],
            indent=2, ensure_ascii=False) + "\n")  # fmt: skip
    return rc


if __name__ == "__main__":
    sys.exit(main())
