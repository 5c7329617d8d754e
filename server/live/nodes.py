"""This process as one node of many: its heartbeat, where new inspections go, and who holds each.

With ``takan serve --node NAME --advertise-url URL`` the node registers in the database and beats
ten times a lease (alive while its beat is younger than ``ALIVE_S``), renewing the lease of
every active inspection it holds. A new inspection goes to the least-loaded live node. A
participant who reaches a node that does not hold the inspection is redirected to the holder
while its lease runs; once the lease has lapsed (the holder died or stalled), the node takes the
inspection over with the next epoch and chains ``node_lost``. Every chain write of a live
inspection checks that this node still holds it at its epoch (``fence``), so a node that wakes up
after a takeover writes nothing more for it. Without ``--node`` the process holds everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from recorder.archive import Archive
from server.clock import millis, utc_iso
from server.errors import Fenced
from server.store.nodes import Placement
from server.store.store import Store

logger = logging.getLogger(__name__)

ALIVE_S = 5.0  # a node whose last beat is older is dead to the others
LEASE_S = 10.0  # renewed with every beat: it lapses this long after the holder's last one
BEATS_PER_LEASE = 10


@dataclass(frozen=True, slots=True)
class Held:
    """This node holds the inspection at ``epoch`` (0: a single process, no placements)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """Another live node holds it: the client is to go there."""

    placement: Placement

    @property
    def ws_url(self) -> str:
        return signalling_url(self.placement.advertise_url)


def signalling_url(advertise_url: str) -> str:
    """The WebSocket URL of a node reached at ``advertise_url`` (its /ws)."""
    scheme, rest = advertise_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/ws"


class NodeAgent:
    def __init__(
        self,
        name: str,
        advertise_url: str,
        store: Store,
        archive: Archive,
        wall: Callable[[], float],
        is_live_here: Callable[[str], int | None],
        lease_s: float = LEASE_S,
    ) -> None:
        """``is_live_here(inspection_id)`` is the epoch at which this process runs the
        inspection live, None if it does not."""
        self.name = name
        self.advertise_url = advertise_url
        self._store = store
        self._archive = archive
        self._wall = wall
        self._is_live_here = is_live_here
        self._beating: asyncio.Task[None] | None = None
        self._writing_out: set[asyncio.Task[None]] = set()
        self.lease_s = lease_s

    def _ms(self, offset_s: float = 0.0) -> int:
        return millis(self._wall() + offset_s)

    async def start(self) -> None:
        await self._store.nodes.register(
            self.name, self.advertise_url, utc_iso(self._wall()), self._ms()
        )
        self._beating = asyncio.create_task(self._beat_forever(), name=f"heartbeat {self.name}")
        logger.info("node registered", extra={"node": self.name, "url": self.advertise_url})

    async def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None
        for task in list(self._writing_out):
            task.cancel()
        await asyncio.gather(*self._writing_out, return_exceptions=True)

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self._store.nodes.heartbeat(self.name, self._ms(), self._ms(self.lease_s))
            except Exception:  # a database outage: keep trying; leases lapse meanwhile
                logger.exception("heartbeat failed", extra={"node": self.name})
            await asyncio.sleep(self.lease_s / BEATS_PER_LEASE)

    async def drain(self, hang_up: Callable[[], Awaitable[None]]) -> None:
        """A node going down on purpose (SIGTERM): no new inspections come to it, its own are
        hung up (their last segments chained) and then let go, so that the participants'
        reconnects make another node take each over at once."""
        await self._store.nodes.set_draining(self.name)
        await hang_up()
        released = await self._store.nodes.release(self.name, self._ms())
        logger.info("node drained", extra={"node": self.name, "released": released})

    async def place(self, inspection_id: str) -> Placement | None:
        """Put a new inspection on the least-loaded live node (this one if none is alive)."""
        live = [n for n in await self._store.nodes.live(self._ms(-ALIVE_S)) if not n.draining]
        node = live[0].name if live else self.name
        placed = await self._store.nodes.place(
            inspection_id, node, self._ms(self.lease_s), utc_iso(self._wall())
        )
        if placed is not None:
            logger.info(
                "inspection placed",
                extra={"inspection_id": inspection_id, "node": node, "load": len(live)},
            )
        return placed

    async def claim(self, case_id: str, inspection_id: str) -> Held | Elsewhere:
        """Who is to run the inspection live: this node (taking it over if its holder's lease
        lapsed, which is chained), or the live node that holds it."""
        for _ in range(3):  # lost a race to another node: look again
            placement = await self._store.nodes.placement(inspection_id)
            if placement is None:  # made before placements (or by a single process)
                placement = await self.place(inspection_id)
                if placement is None:
                    continue
            if placement.node == self.name:
                return Held(placement.epoch)
            if not placement.lapsed(self._ms()):
                return Elsewhere(placement)
            taken = await self._store.nodes.take_over(
                inspection_id,
                self.name,
                placement.epoch,
                self._ms(),
                self._ms(self.lease_s),
                utc_iso(self._wall()),
            )
            if taken is not None:
                await self._chain_loss(case_id, placement, taken)
                return Held(taken.epoch)
        raise Fenced(f"inspection '{inspection_id}' keeps moving between nodes; try again")

    async def _chain_loss(self, case_id: str, lost: Placement, taken: Placement) -> None:
        recorded = await self._archive.segments_recorded(case_id, lost.inspection_id)
        body = {
            "inspection_id": lost.inspection_id,
            "node": lost.node,
            "epoch": taken.epoch,
            "lost_epoch": lost.epoch,
            # released: the node let go of it (drained); lapsed: it stopped renewing its lease
            "how": "released" if lost.lease_until_ms == 0 else "lapsed",
            "lease_until": utc_iso(lost.lease_until_ms / 1000) if lost.lease_until_ms else None,
            "taken_by": self.name,
            "last_segments": recorded,
        }
        entry = await self._archive.append(case_id, "node_lost", body)
        if self._archive.shared_chain is not None:
            # What the lost node sequenced but did not store goes up from the database now;
            # its spool's objects follow when it restarts.
            task = asyncio.create_task(self._write_out(case_id), name=f"write out {case_id}")
            self._writing_out.add(task)
            task.add_done_callback(self._writing_out.discard)
        logger.warning(
            "inspection taken over from a lost node",
            extra={
                "inspection_id": lost.inspection_id,
                "node": lost.node,
                "epoch": taken.epoch,
                "seq": entry.seq,
            },
        )

    async def _write_out(self, case_id: str) -> None:
        try:
            await self._archive.write_out(case_id)
        except Exception:  # storage down: the exporter's write-out tries again
            logger.exception("writing out a lost node's entries failed", extra={"case_id": case_id})

    async def report_connected(self, inspection_id: str, connected: int) -> None:
        """How many are connected here to an inspection this node holds (for the dashboards
        other nodes serve)."""
        await self._store.nodes.set_connected(inspection_id, self.name, connected)

    async def connected(self, inspection_ids: list[str]) -> dict[str, int]:
        """Of ``inspection_ids``, those live on some node with someone connected: how many."""
        return await self._store.nodes.connected(inspection_ids, self._ms(), self._ms(-ALIVE_S))

    async def fence(self, case_id: str, kind: str, body: dict[str, Any]) -> None:
        """Refuse a chain write for an inspection this process runs live at an epoch the
        database has moved past (another node took it over while this one stalled)."""
        inspection_id = body.get("inspection_id")
        if not isinstance(inspection_id, str):
            return
        epoch = self._is_live_here(inspection_id)
        if not epoch:
            return
        placement = await self._store.nodes.placement(inspection_id)
        if placement is not None and (placement.node, placement.epoch) == (self.name, epoch):
            return
        holder = f"{placement.node} at epoch {placement.epoch}" if placement else "nobody"
        logger.error(
            "write refused: this node lost the inspection",
            extra={
                "case_id": case_id,
                "inspection_id": inspection_id,
                "kind": kind,
                "node": self.name,
                "epoch": epoch,
                "holder": holder,
            },
        )
        raise Fenced(
            f"inspection '{inspection_id}' is held by {holder}; this node ({self.name},"
            f" epoch {epoch}) no longer writes for it"
        )
