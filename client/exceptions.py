"""Every error the client reports to its user; foreign errors are translated where they occur.

Each carries a one-line message fit for stderr and the process exit status it leads to.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of the tree: something stopped a command; ``str()`` is the one-line reason."""

    exit_status = 1


class UsageError(ClientError):
    """A malformed URL, an unknown source or an impossible option."""

    exit_status = 2


class UnreachableError(ClientError):
    """The server could not be reached or did not speak WebSocket at /ws."""

    exit_status = 3


class RejectedError(ClientError):
    """The server answered with an ``error`` message that ends the session."""

    exit_status = 4

    def __init__(self, code: str, reason: str, ref: str | None = None) -> None:
        super().__init__(
            f"server refused: {code}: {reason}" if reason else f"server refused: {code}"
        )
        self.code = code
        self.reason = reason
        self.ref = ref


class ProtocolError(ClientError):
    """The server broke the protocol: closed early, sent garbage, or never answered."""

    exit_status = 5


class SourceError(ClientError):
    """The media source (file or camera) could not be opened."""

    exit_status = 6


class Interrupted(ClientError):
    """Ctrl-C or SIGTERM arrived before there was anything to report."""

    exit_status = 130
