"""docs/deploy.md's nginx configuration is what the renderer gives for its example, so the two
never drift apart (the renderer's output is what the tests run with real nginx)."""

from __future__ import annotations

import re
from pathlib import Path

from server.cli.cluster.nginx import Node, Tls, render_site

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
EXAMPLE_NODES = [Node(f"n{number}", f"10.0.0.1{number}", 8080) for number in (1, 2, 3)]
EXAMPLE_TLS = Tls(
    Path("/etc/ssl/takan/fullchain.pem"), Path("/etc/ssl/takan/privkey.pem"), "takan.example.org"
)


def documented_site() -> str:
    found = re.search(
        r"<!-- nginx-site:[^\n]*-->\n```nginx\n(.*?)```\n", DEPLOY_DOC.read_text(), re.S
    )
    assert found is not None, "docs/deploy.md has no ```nginx block after its nginx-site marker"
    return found.group(1)


def test_the_documented_nginx_configuration_is_the_rendered_one() -> None:
    assert documented_site() == render_site(EXAMPLE_NODES, "443", EXAMPLE_TLS)
