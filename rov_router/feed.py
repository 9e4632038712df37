"""Following changes for the status view: :class:`RouteChange` / :func:`follow_routes` /
:func:`follow_neighbors` for outputs that react to each change (the event printer, the live
table), and the change feed, a bounded, numbered log of what changed (so a reader can ask
"what happened since N"), running totals that stay cheap on a full table, and a bounded time
series of VRP counts and route states (the web view reads it)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .router import PeerEvent as _PeerEvent
from .router import RouteEvent as _RouteEvent
from .view import RouteChangeView

if TYPE_CHECKING:
    from .router import RouterCore
    from .rpki.store import Changes, VRPStore
    from .view import RouteCounts


class RouteChange(NamedTuple):
    """A route changed: ``kind`` new | state | withdrawn | flushed, ``old_state`` its origin
    validation state before (a state change).  ``route`` is a handle for
    :meth:`rov_router.status.Status.route_view` and :meth:`RouteFilter.match` (read its current view there)."""

    kind: str
    neighbor: str
    prefix: str
    origin: int | None
    old_state: str | None
    state: str  # at the time of the change
    route: Any

    @property
    def gone(self) -> bool:
        return self.kind in ("withdrawn", "flushed")


def follow_routes(core: RouterCore, fn: Callable[[RouteChange], None]) -> None:
    """``fn(change)`` after every route change of ``core``."""

    def listener(ev) -> None:
        if ev.__class__ is _RouteEvent:
            r = ev.route
            fn(RouteChange(ev.kind, r.peer.address, r.prefix, r.origin, ev.old_state, r.state, r))

    core.listeners.append(listener)


def follow_neighbors(core: RouterCore, fn: Callable[[str, str, str], None]) -> None:
    """``fn(neighbor, state, reason)`` when a BGP session of ``core`` changes state."""

    def listener(ev) -> None:
        if ev.__class__ is _PeerEvent:
            fn(ev.peer, ev.state, ev.reason)

    core.listeners.append(listener)


class ChangeViews:
    """Views of route changes, cheap enough for every route of a full table: the reason of a
    not-found route needs no lookup, the AS path text is shared by the routes of one UPDATE."""

    def __init__(self, core: RouterCore) -> None:
        self.core = core
        self._attrs: object = None
        self._path = ""

    def view(self, ch: RouteChange) -> RouteChangeView:
        r = ch.route
        if r.state == "not-found" and r.origin is not None:
            reason = f"no VRP covers {r.prefix}"
        else:
            reason = self.core.verdict(r).reason
        if r.attrs is not self._attrs:
            self._attrs, self._path = r.attrs, r.attrs.path_str()
        a = r.aspa
        return RouteChangeView(
            kind=ch.kind,
            prefix=r.prefix,
            origin=r.origin,
            path=self._path,
            neighbor=ch.neighbor,
            old_state=ch.old_state,
            state=r.state,
            aspa=a.state.value if a is not None else None,
            aspa_reason=a.reason if a is not None else None,
            action=r.action,
            accepted=r.accepted,
            reason=reason,
        )


# ---- the change feed ----------------------------------------------------------------------------


class Viewed(Protocol):
    """What the feed follows (:class:`rov_router.status.Status` is one)."""

    core: RouterCore
    store: VRPStore
    sources: list[Any]
    clock: Callable[[], float]


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

    def __init__(self, status: Viewed, keep: int = 500, series: int = 600) -> None:
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
