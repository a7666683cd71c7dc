"""``python -m mapflow_geo.cli``: the same as the ``mapflow-geo`` command."""

from mapflow_geo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
