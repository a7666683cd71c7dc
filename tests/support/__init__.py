"""Helpers shared by the test files (``pythonpath = ["tests"]`` in ``pyproject.toml``
makes ``from support.<module> import ...`` work from every folder); see tests/README.md."""
