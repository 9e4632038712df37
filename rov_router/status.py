"""The read-only status view of a running router: RPKI sources, neighbors, routes.

Every output reads this module's :class:`Status` and the typed records it builds
(:mod:`rov_router.view`) instead of reaching into the app: the control socket (``show``), the
metrics, the live table, the plain / JSON event printer, the state file, the lab and the web
view.  :class:`Status` is built from the router core, the VRP store and the RPKI sources; it
never changes any of them.  Its change feed is :mod:`rov_router.feed`.

Nothing here imports the app: sources are read through the small :class:`SourceLike` protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .feed import ChangeViews, FeedEvent, RouteChange, StatusFeed, follow_neighbors, follow_routes
from .router import HELD, Stats
from .rpki.vrp import parse_prefix
from .view import (
    LabStepView,
    LabView,
    NeighborStatus,
    RouteChangeView,
    RouteCounts,
    RouteDetail,
    RouteView,
    RpkiSourceStatus,
    StatusView,
    Summary,
    TopologyNode,
    VRPView,
)

if TYPE_CHECKING:
    from .bgp.rib import Route
    from .router import RouterCore
    from .rpki.store import VRPStore

__all__ = [
    "HELD",
    "FeedEvent",
    "LabStepView",
    "LabView",
    "NeighborStatus",
    "RouteChange",
    "RouteChangeView",
    "RouteCounts",
    "RouteDetail",
    "RouteFilter",
    "RouteView",
    "RpkiSourceStatus",
    "SourceLike",
    "Stats",
    "Status",
    "StatusFeed",
    "StatusView",
    "Summary",
    "Tally",
    "TopologyNode",
    "VRPView",
    "route_counts",
    "route_view",
    "tally",
]

STATES = ("valid", "invalid", "not-found")


class SourceLike(Protocol):
    """What the view reads from an RPKI source (``app.RPKISource`` is one)."""

    name: str
    client: Any  # rtr.client.RTRClient
    last_update: float | None

    @property
    def preference(self) -> int: ...


# ---- building the view ---------------------------------------------------------------------------


def rpki_status(sources: Iterable[SourceLike], store: VRPStore) -> tuple[RpkiSourceStatus, ...]:
    out = []
    for src in sources:
        info = src.client.session.info()
        c = store.counts(src.name)
        out.append(
            RpkiSourceStatus(
                name=src.name,
                cache=f"{src.client.host}:{src.client.port}",
                preference=src.preference,
                connected=bool(src.client.connected),
                state=info.state,
                version=info.version,
                session_id=info.session_id,
                serial=info.serial,
                refresh=info.timers.refresh,
                retry=info.timers.retry,
                expire=info.timers.expire,
                expires_in=info.expires_in,
                last_update=src.last_update,
                last_error=src.client.last_error,
                vrps=c["vrps"],
                vrps_v4=c["vrps_v4"],
                vrps_v6=c["vrps_v6"],
                aspas=c["aspas"],
                router_keys=c["router_keys"],
                enabled=bool(src.client.enabled),
                pending_records=src.client.session.pending_records,
            )
        )
    return tuple(out)


def neighbor_status(
    core: RouterCore, per_peer: dict[str, dict[str, int]] | None = None
) -> tuple[NeighborStatus, ...]:
    out = []
    for p in core.peers.values():
        c = per_peer[p.address] if per_peer is not None else p.counts()
        out.append(
            NeighborStatus(
                address=p.address,
                asn=p.config.asn,
                role=p.config.role,
                description=p.config.description or "",
                policy=p.config.policy,
                aspa_policy=p.config.aspa_policy,
                state=p.state,
                reason=p.reason,
                since=p.since,
                received=c["received"],
                accepted=c["accepted"],
                dropped=c["dropped"],
                valid=c["valid"],
                invalid=c["invalid"],
                not_found=c["not-found"],
                held=c.get("held", 0),
                advertised=len(p.adj_out),
                last_error=p.last_error,
                rpki_hold=core.held,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Tally:
    """One pass over every route: the totals, per-neighbor counts and the Loc-RIB size (a full
    table takes ~0.1 s, so readers cache it)."""

    counts: RouteCounts
    per_peer: dict[str, dict[str, int]]
    loc_rib: int | None  # None: not counted (a walk over the whole RIB)


def tally(core: RouterCore, *, loc_rib: bool = True) -> Tally:
    """Per neighbor from its running tally (no walk over the routes); the Loc-RIB size walks
    the RIB, so only when asked."""
    n = valid = invalid = dropped = aspa_bad = 0
    per_peer = {}
    for p in core.peers.values():
        c = per_peer[p.address] = p.counts()
        n += c["received"]
        valid += c["valid"]
        invalid += c["invalid"]
        dropped += c["dropped"]
        aspa_bad += c["aspa_invalid"]
    best = sum(1 for e in core.rib.entries() if e.best is not None) if loc_rib else None
    counts = RouteCounts(n, valid, invalid, n - valid - invalid, dropped, aspa_bad)
    return Tally(counts, per_peer, best)


def route_counts(core: RouterCore) -> RouteCounts:
    return tally(core).counts


def route_view(core: RouterCore, r: Route, *, reason: str | None = None) -> RouteView:
    e = core.rib.entry(r.addr, r.plen)
    return RouteView(
        prefix=r.prefix,
        origin=r.origin,
        path=r.attrs.path_str(),
        neighbor=r.peer.address,
        next_hop=r.attrs.next_hop,
        state=r.state,
        reason=reason if reason is not None else core.verdict(r).reason,
        aspa=r.aspa_state,
        aspa_reason=r.aspa.reason if r.aspa is not None else None,
        action=r.action,
        accepted=r.accepted,
        local_pref=r.local_pref,
        best=bool(e and e.best is r),
        received=r.received,
        changed=r.changed,
    )


def route_detail(core: RouterCore, r: Route) -> RouteDetail:
    v = core.verdict(r)

    def vv(vrps) -> tuple[VRPView, ...]:
        return tuple(VRPView(x.prefix, x.maxlen, x.asn) for x in vrps)

    return RouteDetail(
        route=route_view(core, r, reason=v.reason),
        matched=vv(v.matched),
        wrong_origin=vv(v.wrong_origin),
        too_long=vv(v.too_long),
        aspa_bad_hops=tuple(r.aspa.bad_hops) if r.aspa is not None else (),
        aspa_unattested=tuple(r.aspa.unattested) if r.aspa is not None else (),
    )


@dataclass(frozen=True, slots=True)
class RouteFilter:
    """state: valid | invalid | not-found | dropped | aspa-invalid; neighbor: an address;
    prefix: a substring of the prefix text."""

    state: str = ""
    neighbor: str = ""
    prefix: str = ""

    def match(self, r: Route) -> bool:
        if self.state:
            if self.state == "dropped":
                if r.accepted:
                    return False
            elif self.state == "aspa-invalid":
                if r.aspa is None or r.aspa.state != "invalid":
                    return False
            elif r.state != self.state:
                return False
        if self.neighbor and r.peer.address != self.neighbor:
            return False
        return not (self.prefix and self.prefix not in r.prefix)


class Status:
    """The read-only view over one router: build snapshots and route lists on demand."""

    def __init__(
        self,
        core: RouterCore,
        store: VRPStore,
        sources: list[SourceLike],
        *,
        started: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.store = store
        self.sources = sources  # the app's list: sources added later appear here
        self.started = started if started is not None else clock()
        self.clock = clock
        self.feed = StatusFeed(self)
        self._changes = ChangeViews(core)
        #: set by the lab runner: the scenario's timeline and its ASes
        self.lab: LabView | None = None
        self.topology: list[TopologyNode] | None = None
        #: observer ASN -> prefixes it holds (the lab reads its downstream speakers)
        self.observers: Callable[[], dict[int, list[str]]] | None = None

    def snapshot(self, t: Tally | None = None) -> StatusView:
        """The whole view; ``t`` a recent :func:`tally` to reuse (else one is made)."""
        now = self.clock()
        cfg = self.core.config
        t = t or tally(self.core)
        return StatusView(
            time=now,
            uptime=now - self.started,
            asn=cfg.asn,
            router_id=cfg.router_id,
            rpki=rpki_status(self.sources, self.store),
            neighbors=neighbor_status(self.core, t.per_peer),
            counts=t.counts,
            loc_rib=t.loc_rib,
            unparsed_lines=self.core.stats.unparsed,
            revalidations=self.core.stats.revalidations,
            stats=self.stats(),
        )

    # ---- parts of the view, each cheap enough for a redraw or a scrape ------------------------

    @property
    def asn(self) -> int:
        return self.core.config.asn

    @property
    def router_id(self) -> str:
        return self.core.config.router_id

    def rpki(self) -> tuple[RpkiSourceStatus, ...]:
        return rpki_status(self.sources, self.store)

    def neighbors(self) -> tuple[NeighborStatus, ...]:
        return neighbor_status(self.core)

    def stats(self) -> Stats:
        """A copy of the core's counters."""
        st = self.core.stats
        return replace(st, last_unparsed=list(st.last_unparsed))

    def summary(self) -> Summary:
        t = tally(self.core)
        c = t.counts
        return Summary(
            routes=c.routes,
            valid=c.valid,
            invalid=c.invalid,
            not_found=c.not_found,
            dropped=c.dropped,
            loc_rib=t.loc_rib or 0,
            unparsed_lines=self.core.stats.unparsed,
            revalidations=self.core.stats.revalidations,
        )

    def neighbor_address(self, text: str) -> str | None:
        """The configured neighbor ``text`` names (any spelling of its address), or None."""
        p = self.core.peer(text)
        return p.address if p is not None else None

    def neighbor_addresses(self) -> list[str]:
        return list(self.core.peers)

    def route_view(self, r: Route) -> RouteView:
        return route_view(self.core, r)

    def route_views(self, prefix: str, neighbor: str = "") -> list[RouteView]:
        """The routes for exactly ``prefix`` (ValueError when it is not a prefix)."""
        return [route_view(self.core, r) for r in self.find(prefix, neighbor)]

    def all_routes(self) -> Iterator[RouteView]:
        for r in self.core.routes():
            yield route_view(self.core, r)

    def vrps(
        self, asn: int | None = None, offset: int = 0, limit: int = 1000
    ) -> tuple[list[VRPView], int]:
        """Every VRP held (the union of the sources), optionally of one ASN: one page of
        ``limit`` from ``offset``, and how many there are in all."""
        page: list[VRPView] = []
        total = 0
        for v in self.store.iter_vrps():
            if asn is not None and v.asn != asn:
                continue
            if offset <= total < offset + limit:
                page.append(VRPView(v.prefix, v.maxlen, v.asn))
            total += 1
        return page, total

    def covering(self, prefix: str) -> list[tuple[VRPView, list[str]]]:
        """The VRPs covering ``prefix`` (most specific first), each with the sources that hold
        it (ValueError when it is not a prefix)."""
        addr, plen = parse_prefix(prefix)
        return [(VRPView(v.prefix, v.maxlen, v.asn), s) for v, s in self.store.covering(addr, plen)]

    def covered(self, prefix: str) -> list[VRPView]:
        """The VRPs at or below ``prefix``."""
        addr, plen = parse_prefix(prefix)
        return [VRPView(v.prefix, v.maxlen, v.asn) for v in self.store.covered(addr, plen)]

    def change_view(self, ch: RouteChange) -> RouteChangeView:
        """The view of a route change, cheap enough for every route of a full table."""
        return self._changes.view(ch)

    def on_neighbor_change(self, fn: Callable[[str, str, str], None]) -> None:
        """``fn(neighbor, state, reason)`` when a BGP session changes state."""
        follow_neighbors(self.core, fn)

    def on_route_change(self, fn: Callable[[RouteChange], None]) -> None:
        """``fn(change)`` after every route change; keep it cheap, a full table makes hundreds
        of thousands of them."""
        follow_routes(self.core, fn)

    def routes(
        self, flt: RouteFilter | None = None, limit: int = 200
    ) -> tuple[list[RouteView], int]:
        """Up to ``limit`` routes matching ``flt`` and how many matched in all."""
        flt = flt or RouteFilter()
        out: list[RouteView] = []
        total = 0
        for r in self.core.routes():
            if flt.match(r):
                total += 1
                if len(out) < limit:
                    out.append(route_view(self.core, r))
        return out, total

    def find(self, prefix: str, neighbor: str = "") -> list[Route]:
        """The routes for exactly ``prefix`` (ValueError when it is not a prefix)."""
        addr, plen = parse_prefix(prefix)
        entry = self.core.rib.entry(addr, plen)  # any spelling of the prefix
        if entry is None:
            return []
        order = {p: i for i, p in enumerate(self.core.peers.values())}
        routes = sorted(entry.routes, key=lambda r: order.get(r.peer, len(order)))
        return [r for r in routes if not neighbor or r.peer.address == neighbor]

    def details(self, prefix: str, neighbor: str = "") -> list[RouteDetail]:
        return [route_detail(self.core, r) for r in self.find(prefix, neighbor)]

    def nodes(self) -> list[TopologyNode]:
        """The router, its RPKI sources and its neighbors (the lab's ASes when it set them)."""
        cfg = self.core.config
        nodes = [TopologyNode("router", cfg.asn, f"AS{cfg.asn} (router)", "router", cfg.router_id)]
        for i, s in enumerate(self.sources):
            nodes.append(TopologyNode(f"cache{i}", None, s.name, "cache"))
        if self.topology is not None:
            return nodes + list(self.topology)
        for p in self.core.peers.values():
            nodes.append(
                TopologyNode(
                    p.address,
                    p.config.asn,
                    p.config.description or f"AS{p.config.asn}",
                    p.config.role,
                    p.address,
                )
            )
        return nodes

    def edge_routes(
        self, per_neighbor: int = 12, per_peer: dict[str, dict[str, int]] | None = None
    ) -> dict[str, dict]:
        """Per neighbor: its latest routes (at most ``per_neighbor``) and counts.  A neighbor
        with a large table is drawn from the feed's recent events (no pass over its routes)."""
        out: dict[str, dict] = {}
        recent_by_peer: dict[str, dict[str, Route]] | None = None
        for p in self.core.peers.values():
            if len(p.adj_in) <= 2000:
                recent = sorted(p.adj_in.values(), key=lambda r: r.changed)[-per_neighbor:]
            else:
                if recent_by_peer is None:
                    recent_by_peer = self._recent_routes()
                live = recent_by_peer.get(p.address, {})
                recent = [r for r in live.values() if p.adj_in.get(r.prefix) is r][-per_neighbor:]
            if per_peer is not None:
                c = per_peer.get(p.address)
            else:
                c = p.counts() if len(p.adj_in) <= 2000 else None
            out[p.address] = {
                "received": len(p.adj_in),
                "advertised": len(p.adj_out),
                "counts": c,
                "routes": [
                    {
                        "prefix": r.prefix,
                        "origin": r.origin,
                        "state": r.state,
                        "aspa": r.aspa_state,
                        "accepted": r.accepted,
                    }
                    for r in recent
                ],
                "exported": sorted(p.adj_out)[:per_neighbor] if len(p.adj_out) <= 2000 else [],
            }
        return out

    def _recent_routes(self) -> dict[str, dict[str, Route]]:
        """Routes named by the feed's recent route events, per neighbor, oldest first."""
        out: dict[str, dict[str, Route]] = {}
        for _n, _t, kind, data in self.feed.events:
            if kind == "route":
                r = data[1]
                d = out.setdefault(r.peer.address, {})
                d.pop(r.prefix, None)
                d[r.prefix] = r
        return out

    def observer_tables(self) -> dict[int, list[str]]:
        """What each downstream observer holds: the lab reads its speakers; a running router
        shows what it advertised to its downstream neighbors (at most 200 prefixes each)."""
        if self.observers is not None:
            return self.observers()
        return {
            p.config.asn: sorted(p.adj_out)[:200]
            for p in self.core.peers.values()
            if p.config.role == "downstream"
        }
