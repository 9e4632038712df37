"""The read-only, typed status view of a running router: RPKI sources, neighbors, routes.

Outputs (the web view; over time the control socket, metrics, live table and state file) read
this module's dataclasses instead of reaching into the app.  :class:`Status` is built from the
router core, the VRP store and the RPKI sources; it never changes any of them.

:class:`StatusFeed` follows the core's events and the RPKI updates and keeps a bounded log of
what changed (numbered, so a reader can ask "what happened since N"), running totals that stay
cheap on a full table, and a bounded time series of VRP counts and route states.

Nothing here imports the app: sources are read through the small :class:`SourceLike` protocol.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .router import HELD
from .router import PeerEvent as _PeerEvent
from .router import RouteEvent as _RouteEvent
from .rpki.vrp import parse_prefix

if TYPE_CHECKING:
    from .bgp.rib import Route
    from .router import RouterCore
    from .rpki.store import Changes, VRPStore

STATES = ("valid", "invalid", "not-found")


class SourceLike(Protocol):
    """What the view reads from an RPKI source (``app.RPKISource`` is one)."""

    name: str
    client: Any  # rtr.client.RTRClient
    last_update: float | None

    @property
    def preference(self) -> int: ...


# ---- the typed records -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RpkiSourceStatus:
    name: str
    cache: str
    preference: int
    connected: bool
    state: str
    version: int
    session_id: int | None
    serial: int | None
    refresh: int
    retry: int
    expire: int
    expires_in: float | None
    last_update: float | None
    last_error: str | None
    vrps: int
    vrps_v4: int
    vrps_v6: int
    aspas: int
    router_keys: int

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NeighborStatus:
    address: str
    asn: int
    role: str
    description: str
    policy: str
    aspa_policy: str
    state: str
    reason: str
    since: float | None
    received: int
    accepted: int
    dropped: int
    valid: int
    invalid: int
    not_found: int
    held: int  # routes waiting for the first RPKI sync
    advertised: int

    def to_json(self) -> dict:
        d = asdict(self)
        d["not-found"] = d.pop("not_found")
        return d


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route as received from one neighbor, with its verdicts and the router's decision.
    ``reason`` is the same text the terminal prints."""

    prefix: str
    origin: int | None
    path: str
    neighbor: str
    next_hop: str
    state: str
    reason: str
    aspa: str | None
    aspa_reason: str | None
    action: str
    accepted: bool
    local_pref: int
    best: bool
    received: float
    changed: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VRPView:
    prefix: str
    max_length: int
    asn: int

    @property
    def text(self) -> str:
        return f"{self.prefix}-{self.max_length} AS{self.asn}"

    def to_json(self) -> dict:
        return {"prefix": self.prefix, "maxLength": self.max_length, "asn": self.asn}


@dataclass(frozen=True, slots=True)
class RouteDetail:
    """A route and why: its covering VRPs split into matched / wrong origin / too long, and the
    ASPA hops that are not customer-to-provider (``bad_hops``) or unattested."""

    route: RouteView
    matched: tuple[VRPView, ...]
    wrong_origin: tuple[VRPView, ...]
    too_long: tuple[VRPView, ...]
    aspa_bad_hops: tuple[tuple[int, int], ...]
    aspa_unattested: tuple[int, ...]

    def to_json(self) -> dict:
        return {
            "route": self.route.to_json(),
            "matched": [v.to_json() for v in self.matched],
            "wrong_origin": [v.to_json() for v in self.wrong_origin],
            "too_long": [v.to_json() for v in self.too_long],
            "aspa_bad_hops": [list(h) for h in self.aspa_bad_hops],
            "aspa_unattested": list(self.aspa_unattested),
        }


@dataclass(frozen=True, slots=True)
class RouteCounts:
    routes: int = 0
    valid: int = 0
    invalid: int = 0
    not_found: int = 0
    dropped: int = 0
    aspa_invalid: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["not-found"] = d.pop("not_found")
        return d


@dataclass(frozen=True, slots=True)
class StatusView:
    """A snapshot of the whole router (no routes: those are read on demand)."""

    time: float
    uptime: float
    asn: int
    router_id: str
    rpki: tuple[RpkiSourceStatus, ...]
    neighbors: tuple[NeighborStatus, ...]
    counts: RouteCounts
    loc_rib: int | None
    unparsed_lines: int
    revalidations: int

    def to_json(self) -> dict:
        return {
            "time": self.time,
            "uptime": self.uptime,
            "asn": self.asn,
            "router_id": self.router_id,
            "rpki": [s.to_json() for s in self.rpki],
            "neighbors": [n.to_json() for n in self.neighbors],
            "counts": self.counts.to_json(),
            "loc_rib": self.loc_rib,
            "unparsed_lines": self.unparsed_lines,
            "revalidations": self.revalidations,
        }


# ---- lab and topology (set by the lab runner; the web view draws them) --------------------------


@dataclass
class LabStepView:
    title: str
    action: str
    explain: str
    expect: list[str]
    state: str = "pending"  # pending | running | ok | failed
    failures: list[str] = field(default_factory=list)


@dataclass
class LabView:
    name: str
    title: str
    lesson: str
    steps: list[LabStepView]
    current: int = -1
    presenter: bool = False
    paused: bool = False
    done: bool = False
    narration: deque = field(default_factory=lambda: deque(maxlen=30))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "lesson": self.lesson,
            "steps": [asdict(s) for s in self.steps],
            "current": self.current,
            "presenter": self.presenter,
            "paused": self.paused,
            "done": self.done,
            "narration": list(self.narration),
        }


@dataclass(frozen=True, slots=True)
class TopologyNode:
    id: str
    asn: int | None
    name: str
    relation: str  # router | cache | customer | provider | peer | upstream | downstream | ...
    address: str = ""


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
    n = valid = invalid = dropped = aspa_bad = 0
    per_peer = {}
    for p in core.peers.values():
        pv = pi = pd = ph = 0
        for r in p.adj_in.values():
            s = r.state
            if s == "valid":
                pv += 1
            elif s == "invalid":
                pi += 1
            if not r.accepted:
                pd += 1
            if r.action == HELD:
                ph += 1
            a = r.aspa
            if a is not None and a.state == "invalid":
                aspa_bad += 1
        k = len(p.adj_in)
        per_peer[p.address] = {
            "received": k,
            "accepted": k - pd,
            "dropped": pd,
            "valid": pv,
            "invalid": pi,
            "not-found": k - pv - pi,
            "held": ph,
        }
        n += k
        valid += pv
        invalid += pi
        dropped += pd
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
        )

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
        return [
            r
            for r in self.core.routes()
            if r.addr == addr and r.plen == plen and (not neighbor or r.peer.address == neighbor)
        ]

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
                recent = [r for r in live.values() if p.adj_in.get(r.key) is r][-per_neighbor:]
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


# ---- the change feed ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    time: float
    kind: str  # route | neighbor | rpki | lab | note
    data: dict


class StatusFeed:
    """A bounded, numbered log of changes, plus running totals and a time series.

    Route events are kept as small dicts only for the last ``keep`` of them; a full table
    flowing through shows up as totals (``route_events``) and in the sampled counts."""

    def __init__(self, status: Status, keep: int = 500, series: int = 600) -> None:
        self.status = status
        self.seq = 0
        self.events: deque[tuple] = deque(maxlen=keep)
        self.route_events = 0
        self.series: deque[dict] = deque(maxlen=series)
        self.rpki_changes: deque[dict] = deque(maxlen=50)
        self._waiters: list[Callable[[], None]] = []
        status.core.listeners.append(self._on_core_event)

    def subscribe(self, fn: Callable[[], None]) -> Callable[[], None]:
        """``fn()`` is called (synchronously, keep it cheap) after every new event."""
        self._waiters.append(fn)
        return lambda: self._waiters.remove(fn) if fn in self._waiters else None

    def _add(self, kind: str, data: object) -> None:
        self.seq += 1
        self.events.append((self.seq, self.status.clock(), kind, data))
        for fn in self._waiters:
            fn()

    def _on_core_event(self, ev) -> None:
        if ev.__class__ is _RouteEvent:
            # a full table sends hundreds of thousands of these: keep a tuple, render on read
            self.route_events += 1
            r = ev.route
            self._add("route", (ev.kind, r, ev.old_state, r.state, r.accepted))
        elif ev.__class__ is _PeerEvent:
            self._add("neighbor", {"neighbor": ev.peer, "state": ev.state, "reason": ev.reason})

    def rpki_applied(self, source: str, serial: int | None, changes: Changes) -> None:
        """An RPKI update reached the store (the app calls this)."""
        rec = {
            "source": source,
            "serial": serial,
            "vrps_added": changes.vrps_added,
            "vrps_removed": changes.vrps_removed,
            "full": changes.full,
            "prefixes": [] if changes.full else changes.prefix_strings()[:20],
            "aspa_customers": sorted(changes.aspa_customers)[:20],
            "time": self.status.clock(),
        }
        self.rpki_changes.append(rec)
        self._add("rpki", rec)

    def note(self, kind: str, data: dict) -> None:
        """Anything else worth showing (lab steps, narration)."""
        self._add(kind, data)

    def since(self, seq: int) -> Iterator[FeedEvent]:
        """Events after ``seq`` still held (older ones fell out of the bounded log)."""
        for n, t, kind, data in self.events:
            if n > seq:
                if kind == "route":
                    change, r, old, state, accepted = data
                    data = {
                        "change": change,
                        "prefix": r.prefix,
                        "origin": r.origin,
                        "neighbor": r.peer.address,
                        "from": old,
                        "state": state,
                        "aspa": r.aspa_state,
                        "accepted": accepted,
                    }
                yield FeedEvent(n, t, kind, data)

    def sample(self, counts: RouteCounts) -> dict:
        """Add a point to the time series: VRP / ASPA counts (per source, summed) and route
        states."""
        st = self.status
        vrps = aspas = 0
        for src in st.sources:
            c = st.store.counts(src.name)
            vrps += c["vrps"]
            aspas += c["aspas"]
        pt = {
            "t": st.clock(),
            "vrps": vrps,
            "aspas": aspas,
            "valid": counts.valid,
            "invalid": counts.invalid,
            "not-found": counts.not_found,
            "dropped": counts.dropped,
        }
        self.series.append(pt)
        return pt
