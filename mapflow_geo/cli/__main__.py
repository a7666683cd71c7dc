"""``python -m mapflow_geo.cli``: the same as the ``mapflow-geo`` command."""

from mapflow_geo.cli import main

raise SystemExit(main())
