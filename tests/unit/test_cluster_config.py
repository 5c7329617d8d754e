"""The local cluster's pure parts (server/cli/cluster/): node names and addresses checked before
they reach nginx's configuration text, the configuration's shape, and the errors that say what
is missing when PostgreSQL or nginx is not installed."""

from __future__ import annotations

import re
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from server.cli.cluster.nginx import (
    NginxUnavailable,
    Node,
    Tls,
    nginx_binary,
    render_config,
    render_site,
)
from server.cli.cluster.postgres import PostgresUnavailable, postgres_bin
from server.cli.cluster.process import untraversable_parent

NODES = [Node("n1", "127.0.0.1", 8081), Node("n2", "127.0.0.1", 8082)]


@pytest.mark.parametrize(
    "name", ["", "N1", "n_1", "n1;", "n1 }", "n1/ws", "a" * 33, "节点", "n1\n"]
)
def test_node_names_outside_a_z_0_9_and_dash_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="node name"):
        Node(name, "127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("host", "port"), [("127.0.0.1;", 80), ("a b", 80), ("", 80), ("h", 0), ("h", 65536)]
)
def test_node_hosts_and_ports_that_are_not_addresses_are_refused(host: str, port: int) -> None:
    with pytest.raises(ValueError, match="node n1"):
        Node("n1", host, port)


def test_a_node_list_that_is_empty_or_names_a_node_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="no nodes"):
        render_site([], "8080")
    with pytest.raises(ValueError, match="n1 more than once"):
        render_site([*NODES, Node("n1", "10.0.0.9", 8080)], "8080")


@pytest.mark.parametrize("listen", ["", "x", "127.0.0.1", "1.2.3.4:0", "h;:80", "80; x"])
def test_listen_addresses_other_than_host_port_are_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="listen address"):
        render_site(NODES, listen)


def test_tls_paths_and_names_that_would_break_the_configuration_are_refused() -> None:
    with pytest.raises(ValueError, match="absolute path"):
        Tls(Path("cert.pem"), Path("/k.pem"), "takan.example.org")
    with pytest.raises(ValueError, match="absolute path"):
        Tls(Path("/a;b.pem"), Path("/k.pem"), "takan.example.org")
    with pytest.raises(ValueError, match="server name"):
        Tls(Path("/c.pem"), Path("/k.pem"), "takan.example.org; return 200")


def test_every_proxy_header_is_set_once_at_server_level_and_none_in_a_location() -> None:
    """A location with a proxy_set_header of its own inherits none of the server's: the nodes
    would get the client's forged X-Forwarded-For, and no prefix (scale-out.md §4)."""
    site = render_site(NODES, "127.0.0.1:8080")
    locations = re.findall(r"^ *location [^{]*\{[^}]*\}", site, re.MULTILINE)
    assert len(locations) == 2 * len(NODES) + 2
    assert all("proxy_set_header" not in location for location in locations)
    headers = re.findall(r"proxy_set_header (\S+) (\S+);", site)
    assert headers == [
        ("Host", "$http_host"),
        ("X-Forwarded-For", "$remote_addr"),
        ("X-Forwarded-Proto", "$scheme"),
        ("X-Forwarded-Prefix", "$node_prefix"),
        ("Upgrade", "$http_upgrade"),
        ("Connection", "$connection_upgrade"),
    ]


def test_each_node_has_its_websocket_and_prefix_locations_then_404_then_any_node() -> None:
    locations = re.findall(
        r"^ *location ([^{]*?) *\{([^}]*)\}", render_site(NODES, "8080"), re.MULTILINE
    )
    assert [where for where, _ in locations] == [
        "= /n/n1/ws", "/n/n1/", "= /n/n2/ws", "/n/n2/", "/n/", "/",
    ]  # fmt: skip
    ws, prefix, *_ = (body.split() for _, body in locations)
    assert ws == [
        "proxy_pass", "http://takan_n1/ws;",
        "proxy_read_timeout", "1h;", "proxy_send_timeout", "1h;",
    ]  # fmt: skip
    assert prefix == ["proxy_pass", "http://takan_n1/;"]  # the trailing / strips /n/n1/
    assert locations[-2][1].split() == ["return", "404;"]
    assert locations[-1][1].split() == ["proxy_pass", "http://takan_any;"]


def test_the_private_configuration_keeps_every_file_in_its_directory(tmp_path: Path) -> None:
    config = render_config(NODES, "127.0.0.1:8080", tmp_path)
    paths = re.findall(r"(?:pid|access_log|_temp_path) (\S+);", config)
    assert len(paths) == 7
    assert all(Path(path).parent == tmp_path for path in paths)
    assert config.startswith("daemon off;")
    assert textwrap.indent(render_site(NODES, "127.0.0.1:8080"), "    ") in config


def test_missing_nginx_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(NginxUnavailable, match=r"nginx is not installed.*make system-deps"):
        nginx_binary(str(tmp_path))


def test_missing_postgresql_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=r"PostgreSQL is not installed.*system-deps"):
        postgres_bin(tmp_path)
    (tmp_path / "15" / "bin").mkdir(parents=True)
    (tmp_path / "15" / "bin" / "initdb").touch()
    with pytest.raises(PostgresUnavailable, match="incomplete: no pg_ctl"):
        postgres_bin(tmp_path)


def test_the_newest_postgresql_is_chosen_by_version_not_by_spelling(tmp_path: Path) -> None:
    for version in ("9.6", "15", "16"):
        for tool in ("initdb", "pg_ctl", "postgres"):
            (tmp_path / version / "bin").mkdir(parents=True, exist_ok=True)
            (tmp_path / version / "bin" / tool).touch()
    assert postgres_bin(tmp_path) == tmp_path / "16" / "bin"


def test_a_parent_the_service_user_cannot_enter_is_named() -> None:
    """pytest's own temporary directories are 0700: this one is made in /tmp."""
    base = Path(tempfile.mkdtemp(prefix="takan-test-parents-"))
    try:
        base.chmod(0o755)
        closed = base / "closed"
        (closed / "cluster").mkdir(parents=True)
        closed.chmod(0o700)
        assert untraversable_parent(closed / "cluster", "nobody") == closed
        closed.chmod(0o711)  # enter, not list: enough
        assert untraversable_parent(closed / "cluster", "nobody") is None
    finally:
        shutil.rmtree(base)
