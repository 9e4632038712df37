"""Adj-RIB-In, Loc-RIB and the index of routes by prefix.

Routes live in pytricia tries keyed by their prefix; each node holds a :class:`PrefixEntry`
with every neighbor's route for that prefix and the current best one.  The same tries answer
"which routes are equal to or more specific than VRP prefix P", which is all RFC 8481
revalidation needs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytricia

from .route import Attributes

ORIGIN_RANK = {"igp": 0, "egp": 1, "incomplete": 2}
STATE_RANK = {"valid": 0, "not-found": 1, "invalid": 2}


class Route:
    __slots__ = (
        "accepted",
        "action",
        "addr",
        "aspa",
        "attrs",
        "changed",
        "ext_communities",
        "family",
        "large_communities",
        "local_pref",
        "origin",
        "peer",
        "plen",
        "prefix",
        "received",
        "state",
        "tag",
    )

    def __init__(
        self,
        peer,
        family: str,
        prefix: str,
        addr: bytes,
        plen: int,
        attrs: Attributes,
        origin: int | None,
        received: float,
    ) -> None:
        self.peer = peer  # router.Peer
        self.family = family
        self.prefix = prefix
        self.addr = addr
        self.plen = plen
        self.attrs = attrs
        self.origin = origin
        self.received = received
        self.changed = received
        self.state = "not-found"
        self.accepted = True
        self.action = "accept"
        self.local_pref = 100
        self.ext_communities: tuple[str, ...] = ()
        self.large_communities: tuple[tuple[int, int, int], ...] = ()
        self.tag: str | None = None  # the state to tag downstream (policy "tag")
        self.aspa = None  # rpki.aspa.ASPAResult, or None where no ASPA algorithm applies

    @property
    def aspa_state(self) -> str | None:
        return self.aspa.state.value if self.aspa is not None else None

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.addr, self.plen)


class PrefixEntry:
    """Every neighbor's route for one prefix (a tuple, replaced on change: a one-route tuple is
    half the size of a list, and a full table is mostly one route per prefix) and the best."""

    __slots__ = ("best", "routes")

    def __init__(self) -> None:
        self.routes: tuple[Route, ...] = ()
        self.best: Route | None = None


def best_key(r: Route, prefer_valid: bool, local_as: int):
    """RFC 4271 §9.1.2.2 order (lower is better): local-pref, [validity], AS path length,
    origin, MED (always compared), eBGP over iBGP, lowest router id, lowest address."""
    p = r.peer
    return (
        -r.local_pref,
        STATE_RANK[r.state] if prefer_valid else 0,
        r.attrs.path_length,
        ORIGIN_RANK.get(r.attrs.origin, 3),
        r.attrs.med if r.attrs.med is not None else 0,
        0 if p.config.asn != local_as else 1,
        p.router_id_int,
        p.address_int,
    )


class RIB:
    def __init__(self) -> None:
        self.tries = {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)}

    def entry(self, addr: bytes, plen: int) -> PrefixEntry | None:
        t = self.tries[len(addr)]
        key = (addr, plen)
        return t[key] if t.has_key(key) else None

    def add(self, route: Route) -> tuple[PrefixEntry, Route | None]:
        """Insert or replace this neighbor's route for the prefix; returns (entry, replaced)."""
        t = self.tries[len(route.addr)]
        key = (route.addr, route.plen)
        if t.has_key(key):
            e = t[key]
        else:
            e = PrefixEntry()
            t.insert(key, e)
        routes = e.routes
        for i, r in enumerate(routes):
            if r.peer is route.peer:
                e.routes = (*routes[:i], route, *routes[i + 1 :])
                return e, r
        e.routes = (*routes, route)
        return e, None

    def remove(self, peer, addr: bytes, plen: int) -> tuple[PrefixEntry | None, Route | None]:
        t = self.tries[len(addr)]
        key = (addr, plen)
        if not t.has_key(key):
            return None, None
        e = t[key]
        routes = e.routes
        for i, r in enumerate(routes):
            if r.peer is peer:
                e.routes = routes[:i] + routes[i + 1 :]
                return e, r
        return e, None

    def prune(self, entry: PrefixEntry, addr: bytes, plen: int) -> None:
        if not entry.routes and entry.best is None:
            t = self.tries[len(addr)]
            key = (addr, plen)
            if t.has_key(key):
                t.delete(key)

    def under(self, addr: bytes, plen: int) -> Iterator[PrefixEntry]:
        """Entries whose prefix equals or is more specific than addr/plen (RFC 8481)."""
        t = self.tries[len(addr)]
        key = (addr, plen)
        if t.has_key(key):
            yield t[key]
            children = t.children(key)
        else:
            t.insert(key, None)  # a probe node, to enumerate what lies below
            try:
                children = t.children(key)
            finally:
                t.delete(key)
        for k in children:
            yield t[k]

    def entries(self) -> Iterator[PrefixEntry]:
        for t in self.tries.values():
            for k in t:
                yield t[k]

    def __len__(self) -> int:
        return len(self.tries[4]) + len(self.tries[16])


def address_int(a: str) -> int:
    try:
        return int(ipaddress.ip_address(a))
    except ValueError:
        return 0
