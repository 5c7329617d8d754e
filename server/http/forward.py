"""Requests that only the node running an inspection live can answer, passed on to it.

Behind one public URL a request lands on any node. A snapshot (taken from the live relay) or the
end of an inspection (which hangs up its sockets) must be handled where the inspection runs: a
node that does not hold it forwards the request to the holder's advertised URL, credentials and
body as they came, and answers with the holder's answer. A forwarded request is never forwarded
again (``FORWARDED_BY``). The advertised URLs are the nodes' own (``takan serve --advertise-url``)
in the database, which is trusted as its configuration is.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from recorder import layout
from server.clock import millis
from server.services import Services

logger = logging.getLogger(__name__)

FORWARDED_BY = "X-Takan-Forwarded-By"
PASSED_HEADERS = ("Authorization", "Cookie", "Content-Type", "Accept", "Accept-Language", "Origin")
FORWARD_TIMEOUT_S = 30.0


async def to_holder(
    request: web.Request, services: Services, inspection_id: str
) -> web.Response | None:
    """The holder's answer if another live node runs the inspection; None to answer here."""
    nodes = services.nodes
    if (
        nodes is None
        or FORWARDED_BY in request.headers
        or not layout.INSPECTION_ID_PATTERN.fullmatch(inspection_id)
    ):
        return None
    placement = await services.store.nodes.placement(inspection_id)
    now_ms = millis(services.clock.now())
    if (
        placement is None
        or placement.node == nodes.name
        or placement.lapsed(now_ms)
        or not placement.advertise_url
    ):
        return None
    url = placement.advertise_url.rstrip("/") + request.rel_url.path_qs
    headers = {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}
    headers[FORWARDED_BY] = nodes.name
    body = await request.read()
    timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(request.method, url, headers=headers, data=body) as answer,
        ):
            data = await answer.read()
            content_type = answer.headers.get("Content-Type", "application/json")
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning(
            "the inspection's node did not answer a forwarded request",
            extra={"inspection_id": inspection_id, "node": placement.node, "error": str(exc)},
        )
        return web.json_response(
            {
                "error": "node_unreachable",
                "reason": f"the inspection runs on node {placement.node}, which did not answer;"
                " try again in a few seconds",
                "node": placement.node,
            },
            status=503,
            headers={"Retry-After": "5"},
        )
    logger.info(
        "request forwarded to the inspection's node",
        extra={"inspection_id": inspection_id, "node": placement.node, "status": status},
    )
    return web.Response(body=data, status=status, headers={"Content-Type": content_type})
