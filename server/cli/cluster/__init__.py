"""Local clusters on this machine: throwaway PostgreSQL (``postgres.py``) and nginx in front of
the nodes (``nginx.py``), started as real processes on loopback by the tests and by ``make
cluster``. Each launcher keeps its logs in the directory it was given, for diagnosis."""

from server.cli.cluster.process import ClusterError

__all__ = ["ClusterError"]
