"""nginx in front of the nodes: one public address, each node reached as ``/n/{node}/…``.

``render_site`` gives the http-level configuration (maps, upstreams, the server): what a
deployment puts in ``/etc/nginx/conf.d/takan.conf`` (docs/deploy.md shows it, with TLS) and what
``render_config`` wraps into a whole nginx.conf for a private nginx, which ``NginxProxy`` runs.

The shape is the one tested in ../shared/facts/scale-out.md §4:
- every ``proxy_set_header`` at server level (a location with one of its own inherits none);
  ``X-Forwarded-For`` is replaced by the client's address (a forged one never passes),
  ``X-Forwarded-Prefix`` is ``/n/{node}`` on a node's paths and empty elsewhere;
- ``= /n/{node}/ws`` (the signalling WebSocket) with hour-long timeouts, ``/n/{node}/`` with the
  prefix stripped (``/n/n1/api/x?y=1`` reaches n1 as ``/api/x?y=1``), any other ``/n/`` is 404,
  ``/`` goes to any node (round robin).
The prefix routes, it does not guard: ``/n/n1/../n2/x`` reaches n2 as ``/x``.

Started as root, nginx's workers run as ``nobody``: its directory is made 0755 and each parent
must let ``nobody`` in, or responses spilling to the proxy's temporary files are cut.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.cli.cluster.process import (
    ClusterError,
    free_port,
    launch,
    log_tail,
    untraversable_parent,
)
from server.settings import NODE_NAME

HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
SERVER_NAME = re.compile(r"[A-Za-z0-9.*-]{1,253}")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
WORKER_USER = "nobody"  # nginx's default when its master runs as root
WS_TIMEOUT = "1h"  # the signalling socket's heartbeat is 20 s: anything above holds
MAX_BODY = "64m"  # above the app's own limit, whose JSON 413 the client then sees
_INSTALL = "install Debian's nginx (`make system-deps` does it)"


class NginxUnavailable(ClusterError):
    """nginx is not installed here: the message says so and how to install it."""


@dataclass(frozen=True, slots=True)
class Node:
    """A Takan node as nginx reaches it: ``name`` in ``/n/{name}/``, and ``host``:``port``."""

    name: str
    host: str
    port: int

    def __post_init__(self) -> None:
        if not NODE_NAME.fullmatch(self.name):
            raise ValueError(
                f"node name {self.name!r}: 1 to 32 of a-z, 0-9 and -, for it is a URL path"
                " segment and an nginx upstream name"
            )
        if not HOST.fullmatch(self.host):
            raise ValueError(f"node {self.name}: host {self.host!r} is not a host name or address")
        if not 0 < self.port < 65536:
            raise ValueError(f"node {self.name}: port {self.port} is not 1 to 65535")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS at nginx: the certificate chain and key files, and the public host name."""

    certificate: Path
    key: Path
    server_name: str

    def __post_init__(self) -> None:
        if not SERVER_NAME.fullmatch(self.server_name):
            raise ValueError(f"server name {self.server_name!r} is not a host name")
        for path in (self.certificate, self.key):
            if not path.is_absolute() or re.search(r"[\s;{}'\"$#\\]", str(path)):
                raise ValueError(f"{path}: an absolute path without spaces or ; {{ }} $ # quotes")


def check_nodes(nodes: Iterable[Node]) -> tuple[Node, ...]:
    found = tuple(nodes)
    if not found:
        raise ValueError("no nodes: nginx needs at least one to send requests to")
    names = [node.name for node in found]
    doubles = sorted({name for name in names if names.count(name) > 1})
    if doubles:
        raise ValueError(f"node names must differ: {', '.join(doubles)} more than once")
    return found


def check_listen(listen: str) -> str:
    """``port``, ``host:port`` or ``[v6]:port``."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536 or (host and not HOST.fullmatch(host)):
        raise ValueError(f"listen address {listen!r}: PORT, HOST:PORT or [ADDRESS]:PORT")
    return listen


def render_site(nodes: Sequence[Node], listen: str, tls: Tls | None = None) -> str:
    """The http-level configuration: maps, one upstream per node and one of all, the server
    (listening on ``listen``, with TLS when given; TLS on port 443 adds a port-80 redirect)."""
    nodes = check_nodes(nodes)
    listen = check_listen(listen)
    lines = [
        "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
        "map $uri $node_prefix { ~^(/n/[^/]+)/ $1; default ''; }",
        "",
    ]
    for node in nodes:
        lines.append(f"upstream takan_{node.name} {{ server {node.address}; keepalive 8; }}")
    lines += [
        "upstream takan_any {",
        *(f"    server {node.address};" for node in nodes),
        "    keepalive 8;",
        "}",
        "",
    ]
    if tls is not None and listen.rpartition(":")[2] == "443":
        lines += [
            "server {",
            f"    listen 80; server_name {tls.server_name};",
            "    return 301 https://$host$request_uri;",
            "}",
        ]
    lines.append("server {")
    if tls is None:
        lines.append(f"    listen {listen};")
    else:
        lines += [
            f"    listen {listen} ssl; server_name {tls.server_name};",
            f"    ssl_certificate {tls.certificate}; ssl_certificate_key {tls.key};",
            "    ssl_protocols TLSv1.2 TLSv1.3;",
        ]
    lines += [
        f"    client_max_body_size {MAX_BODY};",
        "    # Every proxy_set_header here: a location with one of its own would inherit none.",
        "    proxy_http_version 1.1;",
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For $remote_addr;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Forwarded-Prefix $node_prefix;",
        "    proxy_set_header Upgrade $http_upgrade;",
        "    proxy_set_header Connection $connection_upgrade;",
    ]
    for node in nodes:
        lines += [
            f"    location = /n/{node.name}/ws {{",
            f"        proxy_pass http://takan_{node.name}/ws;",
            f"        proxy_read_timeout {WS_TIMEOUT}; proxy_send_timeout {WS_TIMEOUT};",
            "    }",
            f"    location /n/{node.name}/ {{ proxy_pass http://takan_{node.name}/; }}",
        ]
    lines += [
        "    location /n/ { return 404; }",
        "    location / { proxy_pass http://takan_any; }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_config(
    nodes: Sequence[Node], listen: str, directory: Path, tls: Tls | None = None
) -> str:
    """A whole nginx.conf for a private nginx in the foreground, every file in ``directory``."""
    d = directory
    site = render_site(nodes, listen, tls)
    temp = " ".join(
        f"{kind}_temp_path {d / part};"
        for kind, part in (
            ("client_body", "client_body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"), ("scgi", "scgi"),
        )
    )  # fmt: skip
    return (
        f"daemon off; worker_processes 1; pid {d / 'nginx.pid'};\n"
        "error_log stderr notice;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {d / 'access.log'};\n"
        f"    {temp}\n"
        + "".join(f"    {line}\n" if line else "\n" for line in site.splitlines())
        + "}\n"
    )


def nginx_binary(search: str | None = None) -> Path:
    """nginx on ``search`` (default: PATH, then /usr/sbin and /sbin, where Debian puts it)."""
    if search is None:
        search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which("nginx", path=search)
    if found is None:
        raise NginxUnavailable(f"nginx is not installed: no nginx in {search}; {_INSTALL}")
    return Path(found)


@dataclass
class NginxProxy:
    """A private nginx (its master in the foreground, a process of ours) on ``host``:``port``."""

    root: Path
    port: int
    nodes: tuple[Node, ...]
    host: str = "127.0.0.1"
    tls: Tls | None = None
    binary: Path = field(default_factory=nginx_binary)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        root: Path,
        nodes: Sequence[Node],
        port: int | None = None,
        host: str = "127.0.0.1",
        tls: Tls | None = None,
    ) -> NginxProxy:
        """Write the configuration into ``root``, check it with ``nginx -t`` and start nginx
        (HTTPS with ``tls``); returns once it accepts connections."""
        proxy = cls(root.resolve(), port or free_port(), check_nodes(nodes), host, tls)
        proxy._prepare()
        proxy._write(proxy.config_path, proxy.nodes)
        proxy.process = launch(
            proxy._command(proxy.config_path),
            name=f"nginx on {proxy.listen}",
            log=proxy.log,
            ready=proxy._accepts,
            cwd=proxy.root,
            poll_s=0.02,
            timeout_s=START_TIMEOUT_S,
        )
        return proxy

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.listen}"

    @property
    def config_path(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def log(self) -> Path:
        return self.root / "nginx.log"

    def reload(self, nodes: Sequence[Node]) -> None:
        """Route to ``nodes`` from now on: the new configuration is checked (``nginx -t``: a bad
        one changes nothing), put in place and nginx told (SIGHUP); returns when its new worker
        has started and the old ones stopped accepting."""
        if self.process is None or self.process.poll() is not None:
            raise ClusterError(f"nginx on {self.listen} is not running:\n{log_tail(self.log)}")
        nodes = check_nodes(nodes)
        candidate = self.root / "nginx.conf.new"
        self._write(candidate, nodes)
        candidate.replace(self.config_path)
        before = self._reloads_done()
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._reloads_done() == before:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"nginx on {self.listen} did not reload:\n{log_tail(self.log)}")
            time.sleep(0.02)
        self.nodes = nodes

    def stop(self) -> None:
        """Graceful stop (SIGQUIT), then SIGTERM and SIGKILL if it takes over ``STOP_TIMEOUT_S``
        each (open WebSockets hold a graceful stop); again is a no-op."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for how in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, how)
            try:
                process.wait(STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> NginxProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _command(self, config: Path, *, test: bool = False) -> list[str]:
        return [
            str(self.binary), *(["-t", "-q"] if test else []),
            "-e", "stderr", "-p", str(self.root), "-c", str(config),
        ]  # fmt: skip

    def _prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            blocked = untraversable_parent(self.root, WORKER_USER)
            if blocked is not None:
                raise ClusterError(
                    f"nginx's workers run as {WORKER_USER!r}, who may not enter {blocked} above"
                    f" {self.root}: put it under a directory they can traverse, such as /tmp"
                )

    def _write(self, path: Path, nodes: Sequence[Node]) -> None:
        """Write ``path`` and check it with ``nginx -t``; ``ClusterError`` with its verdict."""
        path.write_text(render_config(nodes, self.listen, self.root, self.tls))
        done = subprocess.run(  # noqa: S603 - our own argument list
            self._command(path, test=True),
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"nginx -t refused {path}:\n{done.stderr.strip()}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _reloads_done(self) -> int:
        """How many reconfigurations the master has finished (its log's lines saying so)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return text.count("gracefully shutting down")
