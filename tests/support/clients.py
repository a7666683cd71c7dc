"""Clients of ours with a part of the API taken away, as a client without it would be."""

from __future__ import annotations


class _UnpagedProcessings:
    """A client's processings API without ``pages``: the runner lists with ``list()``,
    whose ``complete`` says whether the sweep covered the service's ``total`` (a plain
    list, with ``plain``: a listing that says nothing of it)."""

    def __init__(self, inner, plain: bool):
        self._inner = inner
        self._plain = plain

    def __getattr__(self, name):
        if name == "pages":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def list(self, *args, **kwargs):
        listing = self._inner.list(*args, **kwargs)
        return list(listing) if self._plain else listing


def without_pages(client, *, plain: bool = False):
    """``client`` with its processings API lacking ``pages`` (listing by ``list()``;
    a plain list of processings with ``plain``)."""
    client.processings = _UnpagedProcessings(client.processings, plain)
    return client
