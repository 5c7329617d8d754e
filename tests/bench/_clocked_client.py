"""``python -m client`` with one line more: the monotonic clock (system-wide on Linux) at the
moment the command starts, after its imports, printed to stderr as ``CLOCK <seconds>``.

The benchmarks use it to place the client's own relative figures (e.g. watch's
``first_frame_ms``, counted from its start) on one time line with other processes.
"""

from __future__ import annotations

import sys
import time

from client.cli import main

if __name__ == "__main__":
    print(f"CLOCK {time.monotonic():.6f}", file=sys.stderr, flush=True)
    sys.exit(main(sys.argv[1:]))
