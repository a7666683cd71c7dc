"""Defaults the command line's help shows, in a module that imports nothing.

``mapflow-geo --help`` states the service's URL, the environment variables read and the
plan size cap; keeping them here lets it do so without loading the HTTP stack or the run
layer. Their users re-export them: :mod:`mapflow_geo._http` the URL and the variables,
:mod:`mapflow_geo.run.prepare` the cap.

>>> from mapflow_geo._defaults import ENV_TOKEN, MAX_PROCESSINGS
>>> ENV_TOKEN, MAX_PROCESSINGS
('MAPFLOW_TOKEN', 10000)
"""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.mapflow.ai/rest"
ENV_TOKEN = "MAPFLOW_TOKEN"
ENV_BASE_URL = "MAPFLOW_API_URL"

#: Plans with more processings than this are refused unless ``max_processings`` is
#: raised (or None): each one costs a cost request before the run and a create in it.
MAX_PROCESSINGS = 10_000

__all__ = ["DEFAULT_BASE_URL", "ENV_BASE_URL", "ENV_TOKEN", "MAX_PROCESSINGS"]
