"""Nodes (``takan serve --node``) and placements: which node holds each live inspection.

A node is alive while its heartbeat is younger than ``alive_ms``. A placement is a lease with an
epoch: its owner renews it; once it has lapsed another node may take the inspection over, which
raises the epoch by one (a compare-and-set: of two nodes trying at once, one wins). Times are
milliseconds of the nodes' UTC clocks (kept in step by NTP).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.store.backend import Row, Tx
from server.store.repository import Repository, marks


@dataclass(frozen=True, slots=True)
class NodeRow:
    name: str
    advertise_url: str
    heartbeat_ms: int
    draining: bool
    load: int = 0  # active inspections placed on it


@dataclass(frozen=True, slots=True)
class Placement:
    inspection_id: str
    node: str
    epoch: int
    lease_until_ms: int
    advertise_url: str  # the node's ("" if it never registered)

    def lapsed(self, now_ms: int) -> bool:
        return self.lease_until_ms <= now_ms


def _placement(row: Row) -> Placement:
    return Placement(
        row["inspection_id"],
        row["node"],
        int(row["epoch"]),
        int(row["lease_until_ms"]),
        row["advertise_url"] or "",
    )


_PLACEMENT = (
    "SELECT p.inspection_id, p.node, p.epoch, p.lease_until_ms, n.advertise_url"
    " FROM placements p LEFT JOIN nodes n ON n.name = p.node WHERE p.inspection_id = ?"
)
_ACTIVE = "SELECT inspection_id FROM inspections WHERE status = 'active'"


class Nodes(Repository):
    async def register(self, name: str, advertise_url: str, now: str, now_ms: int) -> None:
        """The node, alive and taking inspections (again, after a restart)."""
        await self._run(
            "INSERT INTO nodes (name, advertise_url, started_at, heartbeat_ms, draining)"
            " VALUES (?, ?, ?, ?, 0) ON CONFLICT (name) DO UPDATE SET"
            " advertise_url = excluded.advertise_url, started_at = excluded.started_at,"
            " heartbeat_ms = excluded.heartbeat_ms, draining = 0",
            (name, advertise_url, now, now_ms),
        )

    async def heartbeat(self, name: str, now_ms: int, lease_until_ms: int) -> int:
        """The node is alive, and renews the lease of every active inspection it still holds:
        how many."""

        def beat(tx: Tx) -> int:
            tx.run("UPDATE nodes SET heartbeat_ms = ? WHERE name = ?", (now_ms, name))
            # A lease that lapsed while the node stalled is renewed too, as long as no other
            # node took the inspection over (then the placement names that node); one the node
            # let go of (0) is not.
            return tx.run(
                f"UPDATE placements SET lease_until_ms = ? WHERE node = ?"  # noqa: S608
                f" AND lease_until_ms > 0 AND inspection_id IN ({_ACTIVE})",
                (lease_until_ms, name),
            )

        return await self._db.write(beat)

    async def set_draining(self, name: str) -> None:
        await self._run("UPDATE nodes SET draining = 1 WHERE name = ?", (name,))

    async def release(self, name: str, now_ms: int) -> int:
        """Let go of every inspection the node still holds (a lease of 0: another node takes
        each over at the next join, without waiting for it to lapse): how many."""
        return await self._run(
            "UPDATE placements SET lease_until_ms = 0 WHERE node = ? AND lease_until_ms > ?",
            (name, now_ms),
        )

    async def live(self, alive_since_ms: int) -> list[NodeRow]:
        """The live nodes, least loaded first (then by name)."""
        rows = await self._all(
            f"SELECT n.name, n.advertise_url, n.heartbeat_ms, n.draining,"  # noqa: S608
            f" (SELECT COUNT(*) FROM placements p WHERE p.node = n.name"
            f"  AND p.inspection_id IN ({_ACTIVE})) AS load"
            " FROM nodes n WHERE n.heartbeat_ms > ? ORDER BY load, n.name",
            (alive_since_ms,),
        )
        return [
            NodeRow(
                r["name"],
                r["advertise_url"],
                int(r["heartbeat_ms"]),
                bool(r["draining"]),
                int(r["load"]),
            )
            for r in rows
        ]

    # placements

    async def place(
        self, inspection_id: str, node: str, lease_until_ms: int, now: str
    ) -> Placement | None:
        """The inspection's first placement (epoch 1); None if it has one already."""

        def place(tx: Tx) -> Placement | None:
            added = tx.run(
                "INSERT INTO placements (inspection_id, node, epoch, lease_until_ms, placed_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (inspection_id) DO NOTHING",
                (inspection_id, node, lease_until_ms, now),
            )
            row = tx.one(_PLACEMENT, (inspection_id,))
            return _placement(row) if added and row else None

        return await self._db.write(place)

    async def set_connected(self, inspection_id: str, node: str, connected: int) -> None:
        """How many are connected to the inspection on ``node``, which holds it."""
        await self._run(
            "UPDATE placements SET connected = ? WHERE inspection_id = ? AND node = ?",
            (connected, inspection_id, node),
        )

    async def connected(
        self, inspection_ids: list[str], now_ms: int, alive_since_ms: int
    ) -> dict[str, int]:
        """Of ``inspection_ids``, those held (lease running) by a live node with someone
        connected: how many."""
        if not inspection_ids:
            return {}
        rows = await self._all(
            f"SELECT p.inspection_id, p.connected FROM placements p"  # noqa: S608
            f" JOIN nodes n ON n.name = p.node WHERE p.inspection_id IN ({marks(inspection_ids)})"
            " AND p.connected > 0 AND p.lease_until_ms > ? AND n.heartbeat_ms > ?",
            (*inspection_ids, now_ms, alive_since_ms),
        )
        return {row["inspection_id"]: int(row["connected"]) for row in rows}

    async def placement(self, inspection_id: str) -> Placement | None:
        row = await self._one(_PLACEMENT, (inspection_id,))
        return _placement(row) if row else None

    async def take_over(
        self,
        inspection_id: str,
        node: str,
        seen_epoch: int,
        now_ms: int,
        lease_until_ms: int,
        now: str,
    ) -> Placement | None:
        """Move the inspection to ``node`` with the next epoch, if its placement is still at
        ``seen_epoch`` and its lease has lapsed; None if another node was first."""

        def take(tx: Tx) -> Placement | None:
            moved = tx.run(
                "UPDATE placements SET node = ?, epoch = epoch + 1, lease_until_ms = ?,"
                " placed_at = ? WHERE inspection_id = ? AND epoch = ? AND lease_until_ms <= ?",
                (node, lease_until_ms, now, inspection_id, seen_epoch, now_ms),
            )
            row = tx.one(_PLACEMENT, (inspection_id,))
            return _placement(row) if moved == 1 and row else None

        return await self._db.write(take)
