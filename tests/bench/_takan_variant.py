"""``takan`` with Settings fields its command line does not expose, for what-if benchmark runs.

    python tests/bench/_takan_variant.py '{"remb_floor_bps": 2000000}' serve --port ...

The JSON object overrides fields of every ``Settings`` the CLI builds; the rest of the command
line is ``takan``'s own. Nothing in server/ changes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import server.cli as takan_cli
from server.settings import Settings


def main() -> int:
    overrides: dict[str, Any] = json.loads(sys.argv[1])

    def settings(**fields: Any) -> Settings:
        return Settings(**{**fields, **overrides})

    takan_cli.Settings = settings  # type: ignore[attr-defined,assignment]
    return takan_cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
