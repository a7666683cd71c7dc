"""A local file system that counts the bytes read through it (fsspec, so pyarrow,
geopandas and DuckDB can read through it): what a bbox filter saves."""

from __future__ import annotations

from fsspec.implementations.local import LocalFileSystem


class Counting(LocalFileSystem):
    """The local file system, counting the bytes its files' ``read`` calls return."""

    protocol = ("counting",)
    read_bytes = 0

    @classmethod
    def _strip_protocol(cls, path):
        return LocalFileSystem._strip_protocol(str(path).removeprefix("counting://"))

    def _open(self, path, mode="rb", **kwargs):
        f = super()._open(path, mode, **kwargs)
        read = f.read

        def counted(*args, **kw):
            data = read(*args, **kw)
            Counting.read_bytes += len(data)
            return data

        f.read = counted
        return f
