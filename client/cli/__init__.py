"""The ``farview`` command: one entry point (:func:`main`), a module per subcommand."""

from farview.client.cli.main import main

__all__ = ["main"]
