"""Server secrets in the data dir: created on first start, readable by the owner only (0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """Read the secret at ``path``, or create it atomically with mode 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes()
        if len(data) < size:
            raise ValueError(
                f"{path} is shorter than {size} bytes: refusing a weak secret"
            ) from None
        return data
    data = secrets.token_bytes(size)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return data
