"""``takan`` with Settings fields its command line does not expose, for what-if benchmark runs.

    python tests/bench/_takan_variant.py '{"remb_floor_bps": 2000000}' serve --port ...

The JSON object overrides fields of every ``Settings`` the CLI builds; the rest of the command
line is ``takan``'s own. One key is not a Settings field: ``"_recording": false`` makes
``LiveInspection.start_recording`` do nothing, to tell the relay's CPU from the recorder's.
Nothing in server/ changes on disk.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from server.live.registry import LiveInspection
from server.settings import Settings


async def _no_recording(self: LiveInspection, *args: Any, **kwargs: Any) -> None:
    return None


def main() -> int:
    # The module, not server.cli's re-exported function of the same name.
    takan_cli = importlib.import_module("server.cli.main")
    overrides: dict[str, Any] = json.loads(sys.argv[1])
    if not overrides.pop("_recording", True):
        LiveInspection.start_recording = _no_recording  # type: ignore[method-assign]

    def settings(**fields: Any) -> Settings:
        return Settings(**{**fields, **overrides})

    takan_cli.Settings = settings  # type: ignore[attr-defined]
    status: int = takan_cli.main(sys.argv[2:])
    return status


if __name__ == "__main__":
    sys.exit(main())
