"""The typed status view (rov_router.status): built from a real router core, store and RTR
client, without sockets; the feed follows the core's events."""

from __future__ import annotations

from rov_router.rpki.store import Update
from rov_router.rpki.vrp import VRP, VRPBatch
from rov_router.rtr.client import RTRClient
from rov_router.status import RouteFilter, Status, route_counts
from tests.support.core import Source, announce, make_core, up, withdraw
from tests.support.core import sample_status as _status


def test_snapshot_counts_and_neighbors_agree_with_the_core(tmp_path):
    st, c, _ = _status(tmp_path)
    snap = st.snapshot()
    states = {r.prefix: (r.state, r.accepted) for r in c.routes()}
    assert snap.counts.routes == len(states) == 3
    assert snap.counts.valid == sum(s == "valid" for s, _ in states.values())
    assert snap.counts.invalid == sum(s == "invalid" for s, _ in states.values())
    assert snap.counts.dropped == sum(not a for _, a in states.values())
    (n2,) = [n for n in snap.neighbors if n.address == "127.0.0.2"]
    assert (n2.received, n2.invalid, n2.state) == (3, snap.counts.invalid, "up")
    (n9,) = [n for n in snap.neighbors if n.address == "127.0.0.9"]
    assert n9.advertised == 3 - snap.counts.dropped
    (src,) = snap.rpki
    assert src.name == "f" and src.vrps == len(list(st.store.iter_vrps("f")))
    j = snap.to_json()
    assert j["counts"]["not-found"] == snap.counts.not_found


def test_route_views_carry_the_terminal_reason_and_the_vrp_split(tmp_path):
    st, c, _ = _status(tmp_path)
    rows, total = st.routes(RouteFilter(state="invalid"))
    assert total == len(rows) >= 1
    for row in rows:
        (r,) = [x for x in c.routes() if x.prefix == row.prefix]
        assert row.reason == c.verdict(r).reason and row.state == "invalid"
        assert row.accepted is False and row.action == r.action
    (d,) = st.details(rows[0].prefix)
    v = c.verdict(next(x for x in c.routes() if x.prefix == rows[0].prefix))
    assert [x.text for x in d.wrong_origin] == [
        f"{x.prefix}-{x.maxlen} AS{x.asn}" for x in v.wrong_origin
    ]
    assert d.matched == () and d.route.reason == v.reason
    assert st.routes(RouteFilter(prefix="11.0"))[1] == 1
    assert st.routes(RouteFilter(neighbor="127.0.0.99"))[1] == 0
    assert st.routes(RouteFilter(state="dropped"))[1] == st.snapshot().counts.dropped


def test_feed_numbers_events_and_follows_rpki_changes(tmp_path):
    st, c, store = _status(tmp_path)
    feed = st.feed
    seen = feed.seq
    assert seen >= 5  # two neighbors up, three routes
    woke = []
    feed.subscribe(lambda: woke.append(1))
    u = Update("f", False)
    u.vrps = VRPBatch([(True, VRP.parse("198.51.100.0/24", 24, 65001))])
    changes = store.apply(u)
    c.on_vrp_changes(changes)
    feed.rpki_applied("f", 7, changes)
    new = list(feed.since(seen))
    kinds = [e.kind for e in new]
    assert kinds[-1] == "rpki" and new[-1].data["prefixes"] == ["198.51.100.0/24"]
    c.feed_line(withdraw("11.0.0.0/8"))
    last = list(feed.since(new[-1].seq))
    assert [(e.kind, e.data["change"], e.data["prefix"]) for e in last] == [
        ("route", "withdrawn", "11.0.0.0/8")
    ]
    assert len(woke) == len(new) + 1
    pt = feed.sample(route_counts(c))
    assert pt["vrps"] == store.counts("f")["vrps"] and pt["not-found"] == 0


def test_the_log_is_bounded(tmp_path):
    st, c, _ = _status(tmp_path)
    st.feed.events = type(st.feed.events)(maxlen=4)
    for i in range(20):
        c.feed_line(announce(f"10.{i}.0.0/16", [65001, 65005]))
    assert len(list(st.feed.since(0))) == 4 and st.feed.route_events >= 20


def test_a_large_table_is_tallied_once_and_drawn_from_recent_events(tmp_path):
    from rov_router.status import tally

    st, c, _ = _status(tmp_path)
    for i in range(2100):
        c.feed_line(announce(f"10.{i // 256}.{i % 256}.0/24", [65001, 65005]))
    c.feed_line(withdraw("10.8.51.0/24"))  # the last one announced: gone again
    t = tally(c)
    per = {p.address: p.counts() for p in c.peers.values()}
    assert t.per_peer == per and t.counts.routes == sum(x["received"] for x in per.values())
    assert t.loc_rib == len(c.loc_rib())
    edge = st.edge_routes(per_neighbor=5, per_peer=t.per_peer)["127.0.0.2"]
    assert edge["received"] == 2102 and edge["counts"] == per["127.0.0.2"]
    # the latest routes still held, from the feed (no pass over 2,000 routes)
    assert [r["prefix"] for r in edge["routes"]] == [f"10.8.{i}.0/24" for i in range(46, 51)]
    snap = st.snapshot(t)
    assert snap.counts == t.counts and snap.loc_rib == t.loc_rib


def test_presenter_gate_next_pause_play():
    import asyncio

    from rov_router.lab.runner import PresenterGate

    async def main():
        g = PresenterGate(paused=True)
        w = asyncio.ensure_future(g.wait())
        await asyncio.sleep(0.05)
        assert not w.done()  # paused: waits for Next
        g.next()
        await asyncio.wait_for(w, 1)
        w = asyncio.ensure_future(g.wait())
        await asyncio.sleep(0.05)
        assert not w.done()  # one Next, one step
        g.play()
        await asyncio.wait_for(w, 1)
        await asyncio.wait_for(g.wait(), 1)  # playing: no wait
        g.pause()
        w = asyncio.ensure_future(g.wait())
        await asyncio.sleep(0.05)
        assert not w.done()
        w.cancel()

    asyncio.run(main())


# ---- outputs render from the view, without a running router ------------------------------------


def test_show_renders_the_control_answers_built_from_the_view(tmp_path):
    import json
    from argparse import Namespace

    from rov_router.commands import show
    from rov_router.ops.control import answer

    st, c, _ = _status(tmp_path)

    def lines(what: str, **kw) -> list[str]:
        req = {"cmd": what, **kw}
        resp = json.loads(json.dumps(answer(st, req), default=str))  # as over the socket
        args = Namespace(what=what, state=kw.get("state"), neighbor=kw.get("neighbor"), prefix=None)
        return show.render(args, resp)

    routes = lines("routes")
    assert len(routes) == 3
    for r in c.routes():
        (line,) = [x for x in routes if f" {r.prefix} " in x]
        flag = "x" if not r.accepted else ("*" if line.startswith("*") else " ")
        assert line.startswith(flag) and r.state in line and line.endswith(c.verdict(r).reason)
    assert lines("routes", state="invalid", neighbor="127.0.0.9") == [
        "no invalid routes from 127.0.0.9"
    ]
    nb = lines("neighbors")
    (i,) = [k for k, x in enumerate(nb) if x.startswith("127.0.0.2 ")]
    assert "AS65001" in nb[i] and " up " in nb[i]
    p2 = c.peer("127.0.0.2").counts()
    assert nb[i + 1] == (
        f"    received 3  accepted {p2['accepted']}  dropped {p2['dropped']}  (valid "
        f"{p2['valid']}, invalid {p2['invalid']}, not-found {p2['not-found']})  advertised 0"
    )
    (rtr,) = lines("rtr")
    assert rtr.startswith("f  127.0.0.1:1  ")


def test_show_lines_from_constructed_records():
    from rov_router.commands.show import neighbor_lines, route_lines, rtr_lines
    from rov_router.status import NeighborStatus, RouteView, RpkiSourceStatus

    src = RpkiSourceStatus(
        name="rpki0", cache="127.0.0.1:3323", preference=0, connected=False, state="connecting",
        version=2, session_id=7, serial=42, refresh=3600, retry=600, expire=7200,
        expires_in=30.4, last_update=None, last_error="connection refused", vrps=5, vrps_v4=3,
        vrps_v6=2, aspas=1, router_keys=0,
    )  # fmt: skip
    assert rtr_lines([src]) == [
        "rpki0  127.0.0.1:3323  connecting  v2  session 7  serial 42  5 VRPs (3 IPv4, 2 IPv6)  "
        "0 keys  1 ASPA  expires in 30 s  (connection refused)"
    ]
    nb = NeighborStatus(
        address="127.0.0.2", asn=65001, role="upstream", description="", policy="drop-invalid",
        aspa_policy="off", state="down", reason="", since=None, received=0, accepted=0,
        dropped=0, valid=0, invalid=0, not_found=0, held=0, advertised=0,
        last_error="NOTIFICATION cease",
    )  # fmt: skip
    assert neighbor_lines([nb], now=0.0) == [
        "127.0.0.2        AS65001      upstream    down       ",
        "    received 0  accepted 0  dropped 0  (valid 0, invalid 0, not-found 0)  advertised 0",
        "    last error: NOTIFICATION cease",
    ]
    rv = RouteView(
        prefix="192.0.2.0/24", origin=None, path="65001 {64496}", neighbor="127.0.0.2",
        next_hop="127.0.0.2", state="not-found", reason="why", aspa="unknown", aspa_reason=None,
        action="accept", accepted=True, local_pref=100, best=True, received=0.0, changed=0.0,
    )  # fmt: skip
    assert route_lines([rv]) == [
        "* 192.0.2.0/24         NONE         127.0.0.2        not-found ASPA unknown  accept  "
        "path 65001 {64496}  -- why"
    ]


def test_live_table_renders_from_the_view_and_quits_through_its_callback(tmp_path, monkeypatch):
    import io
    import sys

    from rich.console import Console

    from rov_router.ui.live import LiveDisplay

    c, store = make_core(tmp_path)
    client = RTRClient("127.0.0.1", 1, store, source="f")
    st = Status(c, store, [Source("f", client)], clock=lambda: 1000.0)
    quit_calls: list[int] = []
    live = LiveDisplay(st, on_quit=lambda: quit_calls.append(1))
    live.console = Console(width=200, height=40, file=io.StringIO(), record=True)
    up(c, "127.0.0.9")
    up(c, "127.0.0.2")
    c.feed_line(announce("192.0.2.0/24", [65001, 64496]))
    c.feed_line(announce("198.51.100.0/24", [65001, 64499]))
    c.commands()
    live.console.print(live.render())
    text = live.console.export_text()
    assert "BGP neighbors of AS65000" in text and "127.0.0.1:1" in text
    (bad,) = [r for r in c.routes() if r.prefix == "198.51.100.0/24"]
    (row,) = [x for x in text.splitlines() if x.startswith("198.51.100.0/24")]
    assert "invalid" in row and "DROPPED" in row and c.verdict(bad).reason[:40] in row
    live.state_filter = "valid"
    live.console.print(live.render())
    text = live.console.export_text()
    assert "192.0.2.0/24" in text and "198.51.100.0/24" not in text
    monkeypatch.setattr(sys, "stdin", io.StringIO("q"))
    live._key()
    assert quit_calls == [1]
