"""The typed records of the read-only status view (:mod:`rov_router.status` builds them):
RPKI sources, neighbors, routes, counts, the summary, and the lab's timeline and topology.

Every output reads these: the control socket (``show``), the metrics, the live table, the
plain / JSON event printer, the state file, the lab and the web view.  They are plain frozen
dataclasses with ``to_json()``, so an output can be tested from a constructed record without
a running router.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .router import Stats


def _from_json(cls, d: dict):
    """A record from its ``to_json()`` (as ``show`` receives it); unknown keys are ignored."""
    names = {f.name for f in fields(cls)}
    return cls(**{k.replace("-", "_"): v for k, v in d.items() if k.replace("-", "_") in names})


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
    enabled: bool = True  # False: stands by while a more preferred cache is in sync
    pending_records: int = 0  # records received so far while a sync runs

    @classmethod
    def from_json(cls, d: dict) -> RpkiSourceStatus:
        return _from_json(cls, d)

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
    last_error: str = ""  # the last reason the session went down, in words
    rpki_hold: bool = False  # the router holds every route until RPKI has synced once

    @property
    def up(self) -> bool:
        return self.state == "up"

    @classmethod
    def from_json(cls, d: dict) -> NeighborStatus:
        return _from_json(cls, d)

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

    @classmethod
    def from_json(cls, d: dict) -> RouteView:
        return _from_json(cls, d)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RouteChangeView:
    """A route as one change left it (the plain / JSON event lines): ``kind`` new | state |
    withdrawn | flushed, ``old_state`` the origin validation state before a state change."""

    kind: str
    prefix: str
    origin: int | None
    path: str
    neighbor: str
    old_state: str | None
    state: str
    aspa: str | None
    aspa_reason: str | None
    action: str
    accepted: bool
    reason: str


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
    stats: Stats | None = None  # a copy of the core's counters

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


@dataclass(frozen=True, slots=True)
class Summary:
    """The totals printed at exit (and kept in the state file)."""

    routes: int
    valid: int
    invalid: int
    not_found: int
    dropped: int
    loc_rib: int
    unparsed_lines: int
    revalidations: int

    def to_json(self) -> dict:
        return {
            "routes": self.routes,
            "valid": self.valid,
            "invalid": self.invalid,
            "not-found": self.not_found,
            "dropped": self.dropped,
            "loc_rib": self.loc_rib,
            "unparsed_lines": self.unparsed_lines,
            "revalidations": self.revalidations,
        }

    def text(self) -> str:
        return (
            f"summary: {self.routes} routes ({self.valid} valid, {self.invalid} invalid, "
            f"{self.not_found} not-found), {self.dropped} dropped, {self.loc_rib} in "
            f"Loc-RIB, {self.unparsed_lines} unparsable lines"
        )


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
