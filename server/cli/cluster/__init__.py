"""The local cluster on this machine: a throwaway PostgreSQL (``postgres.py``), SeaweedFS as the
S3 archive (``seaweedfs.py``) and nginx in front of the nodes (``nginx.py``), started as real
processes on loopback by the tests and by ``make cluster``. Each launcher keeps its logs in the
directory it was given, for diagnosis; ``process.py`` is what they share."""

from server.cli.cluster.process import ClusterError

__all__ = ["ClusterError"]
