"""The package version (one place; the HTTP layer sends it in its User-Agent)."""

__version__ = "0.1.0"
