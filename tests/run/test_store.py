"""A run's folder (DESIGN.md, *The run cache* and *The journal*; ``run/store.py``'s layout)
and the tables a stored run is read back into, against the simulator's own record of
what it was sent, what it answered and what it charged."""

from __future__ import annotations

import json
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from support.areas import rect_km

import mapflow_geo  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo import open_run, sim, sources
from mapflow_geo.run.store import default_run_dir

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.05, "progress": False}
FINGERPRINT = "0123456789abcdef0123456789abcdef0123456789abcdef"
KEY = FINGERPRINT[:20]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """The per-user cache (platformdirs) inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mapflow-geo" / "runs"


# -- the default run dir: one folder per fingerprint, fresh ones numbered beside it --------


def test_the_first_run_of_a_fingerprint_is_its_plain_folder(cache_home):
    """Nothing stored yet: the run's folder is ``<key>`` under the user's cache, with or
    without ``fresh`` (there is nothing to start afresh from); ``<key>`` is the
    fingerprint's first 20 characters, so a later version finds the runs an earlier one
    stored."""
    assert default_run_dir(FINGERPRINT) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / KEY


def test_a_stored_run_is_resumed_and_fresh_numbers_the_next_beside_it(cache_home):
    (cache_home / KEY).mkdir(parents=True)
    assert default_run_dir(FINGERPRINT) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=False) == cache_home / KEY
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.2"
    (cache_home / f"{KEY}.2").mkdir()
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.2"
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.3"


def test_the_newest_numbered_folder_wins_by_number_not_by_name(cache_home):
    """``.10`` is newer than ``.9``; folders that are not ``<key>.<number>`` (a backup,
    another fingerprint sharing the prefix) are not runs of this fingerprint."""
    for name in (KEY, f"{KEY}.9", f"{KEY}.10", f"{KEY}.old", f"{KEY}.11.bak", f"{KEY}x.40"):
        (cache_home / name).mkdir(parents=True)
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.10"
    assert default_run_dir(FINGERPRINT, fresh=True) == cache_home / f"{KEY}.11"
    # the plain folder removed by hand: the numbered ones are still found
    (cache_home / KEY).rmdir()
    assert default_run_dir(FINGERPRINT) == cache_home / f"{KEY}.10"
    other = "fedcba9876543210fedcba9876543210"
    assert default_run_dir(other) == cache_home / other[:20]
