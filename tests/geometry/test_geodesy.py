"""The WGS84 scale factors that change detection and stitching measure with, against
pyproj's geodesic (an independent implementation of the ellipsoid)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from mapflow_geo._geodesy import m2_per_deg2, metres_per_degree

GEOD = Geod(ellps="WGS84")
STEP = 1e-4  # degrees: short enough that the geodesic is the local scale


@given(st.floats(min_value=-84.0, max_value=84.0))
def test_metres_per_degree_match_the_geodesic(lat):
    kx, ky = metres_per_degree(np.array([lat]))
    _, _, east = GEOD.inv(0.0, lat, STEP, lat)
    _, _, north = GEOD.inv(0.0, lat - STEP / 2, 0.0, lat + STEP / 2)
    assert abs(float(kx[0]) - east / STEP) / (east / STEP) < 1e-6
    assert abs(float(ky[0]) - north / STEP) / (north / STEP) < 1e-6


@given(st.floats(min_value=-84.0, max_value=84.0))
def test_area_element_matches_a_small_geodesic_square(lat):
    half = 0.005
    lons = [-half, half, half, -half]
    lats = [lat - half, lat - half, lat + half, lat + half]
    area, _ = GEOD.polygon_area_perimeter(lons, lats)
    expected = abs(area) / (2 * half) ** 2
    assert abs(float(m2_per_deg2(np.array([lat]))[0]) - expected) / expected < 1e-5
