"""The command line: ``takan serve``, ``user``, ``verify``, ``export``."""

from server.cli.main import main

__all__ = ["main"]
