"""The demo: the main job end to end against the local simulator, no token needed.

Run ``make demo`` (or ``python -m mapflow_geo.demo [AOI_FILE] [-o OUT]``): it starts a
simulator on loopback, plans the sample areas under a 25 km² limit, estimates, processes
them with ``gdf.mapflow.process`` (a progress bar on stderr), and writes the objects,
tables and a map to ``OUT``, ending with what it wrote where.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd

import mapflow_geo  # noqa: F401  (registers gdf.mapflow)
from mapflow_geo import sim

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample_aoi.geojson"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mapflow-geo demo", description=__doc__.splitlines()[0])
    ap.add_argument("aoi", nargs="?", default=str(SAMPLE), help="AOI file (default: sample)")
    ap.add_argument("-o", "--out", default="demo-output", help="output folder")
    ap.add_argument("--model", default="buildings")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gdf = gpd.read_file(args.aoi)
    print(f"Input: {len(gdf)} areas from {args.aoi}")
    with sim.serve(aoi_area_limit_km2=25, processing_seconds=2, seed=7) as server:
        client = server.client()
        print(f"Simulator at {server.url}")
        plan = gdf.mapflow.plan(client=client, model=args.model)
        print(
            f"Plan: {len(plan)} tiles in {plan['processing'].nunique()} processings "
            f"(limit 25 km², {plan['area_km2'].sum():.1f} km² in all)"
        )
        est = gdf.mapflow.estimate(args.model, client=client)
        print(f"Estimate: {est.attrs['total_credits']} credits\n{est.round(2).to_string()}")
        res = gdf.mapflow.process(
            args.model,
            client=client,
            run_dir=out / "run",
            poll_interval=1.0,
            min_poll_interval=0.5,
        )
    print(res)
    print("\nCosts\n" + res.costs.round(2).to_string())
    print("\nStats\n" + res.stats.round(3).to_string())
    features = res.features
    features.to_file(out / "features.gpkg", driver="GPKG")
    res.costs.to_csv(out / "costs.csv")
    m = res.explore(engine="folium")  # one HTML file, whatever the size
    m.save(str(out / "result.html"))
    print()
    print(f"wrote {len(features):,} objects to {out / 'features.gpkg'}")
    print(f"wrote the credits per input row to {out / 'costs.csv'}")
    print(f"wrote a map of the run to {out / 'result.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
