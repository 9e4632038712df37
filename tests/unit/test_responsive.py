"""Responsiveness while a table is ingested: the bridge end hands the loop back after each time
slice of ExaBGP lines, and ``show neighbors`` reads running counts instead of walking the table.

No timed assertions: the slice clock is injected, and counts are compared with a recount."""

from __future__ import annotations

import asyncio
import gc
import io
import itertools
from collections import Counter

from rov_router.bgp.speaker import BridgeEnd
from rov_router.rpki.store import Update
from rov_router.rpki.vrp import VRP, ASPARecord, VRPBatch
from tests.support.core import announce, core, msg, up, withdraw


def _recount(p) -> dict[str, int]:
    """What Peer.counts() must say, counted the slow way."""
    routes = list(p.adj_in.values())
    st = Counter(r.state for r in routes)
    acc = sum(r.accepted for r in routes)
    return {
        "received": len(routes),
        "accepted": acc,
        "dropped": len(routes) - acc,
        "valid": st["valid"],
        "invalid": st["invalid"],
        "not-found": st["not-found"],
        "held": sum(r.action == "waiting for RPKI" for r in routes),
        "aspa_invalid": sum(r.aspa_state == "invalid" for r in routes),
    }


def test_neighbor_counts_follow_every_change_without_a_walk(tmp_path):
    customer = '\n[[neighbor]]\naddress = "127.0.0.5"\nasn = 65005\nrole = "customer"\n'
    c, store = core(tmp_path, extra=customer)
    peers = list(c.peers.values())

    def check(step: str) -> None:
        for p in peers:
            assert p.counts() == _recount(p), f"{step}: {p.address}"

    c.hold()  # start-up: routes arrive before RPKI has synced
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    c.feed_line(msg("state", peer="127.0.0.5", state="up"))
    for line in (
        announce("192.0.2.0/24", [65001, 64496]),  # valid
        announce("198.51.100.0/24", [65001, 64499]),  # invalid: dropped
        announce("11.0.0.0/8", [65001, 65005]),  # not-found
        announce("12.0.0.0/8", [65005, 64777], nh="127.0.0.5").replace(
            '"peer": "127.0.0.2"', '"peer": "127.0.0.5"'
        ),
    ):
        c.feed_line(line)
    check("held")
    assert c.peers["127.0.0.2"].counts()["held"] == 3
    c.release()
    check("released")
    c.feed_line(announce("192.0.2.0/24", [65001, 64499]))  # replaced: now invalid
    c.feed_line(withdraw("11.0.0.0/8"))
    c.feed_line(withdraw("10.99.0.0/16"))  # never announced
    check("replace / withdraw")
    u = Update("f", False)
    u.vrps = VRPBatch([(True, VRP.parse("198.51.100.0/24", 24, 64499))])  # invalid -> valid
    # AS64777 registers AS64999 as its only provider: the customer's route from it (via
    # AS65005) becomes ASPA invalid
    u.aspas = [(True, ASPARecord(64777, (64999,)))]
    c.on_vrp_changes(store.apply(u))
    check("revalidated")
    assert c.peers["127.0.0.5"].counts()["aspa_invalid"] == 1
    assert c.peers["127.0.0.2"].counts()["valid"] == 1
    new = c.config.__class__(**{**vars(c.config), "depref_local_pref": 50})
    c.reconfigure(new)
    check("reconfigured")
    c.feed_line(msg("state", state="down", reason="peer reset"))
    check("peer down")
    assert c.peers["127.0.0.2"].counts()["received"] == 0


def test_show_neighbors_does_not_walk_the_routes(tmp_path):
    """The answer reads a dozen counters: it must not iterate any Adj-RIB-In."""
    c, _ = core(tmp_path, policy="accept-all")
    up(c, "127.0.0.2")
    for i in range(300):
        c.feed_line(announce(f"10.1.{i}.0/24", [65001, 65005]))
    p = c.peers["127.0.0.2"]

    class NoWalk(dict):
        def values(self):
            raise AssertionError("counts() walked the routes")

        def items(self):
            raise AssertionError("counts() walked the routes")

        def __iter__(self):
            raise AssertionError("counts() walked the routes")

    expected = _recount(p)
    p.adj_in = NoWalk(p.adj_in)
    assert p.counts() == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_ingest_yields_to_the_loop_after_each_time_slice(tmp_path):
    """Many lines arrive at once (one read fills the buffer).  Each line costs 7 ms on the
    injected clock; with 20 ms slices the loop gets a turn at least every 3 lines, and a
    task waiting meanwhile (a ``show`` request) runs in between, not after the whole feed."""
    clock = FakeClock()
    seen: list[int] = []
    ticks: list[int] = []

    def on_line(line: bytes) -> None:
        seen.append(int(line))
        clock.now += 0.007

    async def main() -> None:
        end = BridgeEnd(tmp_path / "b.sock", on_line, slice_seconds=0.02, clock=clock)
        await end.start()
        feed = b"".join(b"%d\n" % i for i in range(300))
        _r, w = await asyncio.open_unix_connection(str(tmp_path / "b.sock"))
        w.write(feed)
        await w.drain()
        await end.connected.wait()

        async def other_task() -> None:
            while len(seen) < 300:
                ticks.append(len(seen))
                await asyncio.sleep(0)

        t = asyncio.ensure_future(other_task())
        while len(seen) < 300:
            await asyncio.sleep(0.01)
        await t
        w.close()
        await end.close()
        assert end.yields >= 300 // 3 - 1

    asyncio.run(main())
    # the other task ran between lines, never more than 3 lines apart once the feed flowed
    flowing = [n for n in ticks if 0 < n < 300]
    assert len(flowing) >= 90
    assert max(b - a for a, b in itertools.pairwise(flowing)) <= 3


def test_a_table_ingest_freezes_what_it_received(tmp_path, monkeypatch):
    """Routes stay out of the collector's full passes: the app freezes the heap every
    FREEZE_ROUTES routes received."""
    from rov_router import app as A

    monkeypatch.setattr(A, "FREEZE_ROUTES", 100)
    c, _ = core(tmp_path, policy="accept-all")
    a = A.App.__new__(A.App)  # only what _on_line needs: the core and the flush
    a.core, a._flush_scheduled, a._freeze_at = c, False, A.FREEZE_ROUTES
    a.bridge, a.out = None, io.StringIO()
    up(c, "127.0.0.2")
    frozen: list[int] = []
    monkeypatch.setattr(A.gc, "freeze", lambda: frozen.append(c.stats.announced))
    for i in range(350):
        a._on_line(announce(f"10.{2 + i // 256}.{i % 256}.0/24", [65001, 65005]).encode())
    assert frozen == [100, 200, 300]
    assert gc.isenabled()
