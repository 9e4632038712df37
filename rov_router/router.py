"""The router core: ExaBGP events -> Adj-RIB-In -> RFC 6811 -> policy -> Loc-RIB -> commands.

Over 500 lines on purpose: it is one class, :class:`RouterCore`, whose state (the Adj-RIB-In per
neighbor, the Loc-RIB, the running counts, the pending downstream batches, the RPKI hold) every
step touches; split by step, each part would reach into the others' state.

No I/O here: :class:`RouterCore` takes parsed ExaBGP events (:mod:`rov_router.bgp.exabgp`) and
VRP changes (:class:`rov_router.rpki.store.Changes`) and produces ExaBGP commands for the
downstream neighbors plus events for the display.  :mod:`rov_router.app` wires it to the
bridge socket, the RTR clients and the terminal.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address

from .bgp import exabgp as X
from .bgp.notify import describe, notification_text
from .bgp.rib import RIB, PrefixEntry, Route, address_int, best_key
from .bgp.route import Attributes
from .config import NeighborConfig, RouterConfig
from .gcpause import gc_paused
from .policy import decide, decide_aspa, rfc8097_community
from .rpki.aspa import ALGORITHM
from .rpki.aspa import verify as verify_aspa
from .rpki.store import Changes, VRPStore
from .rpki.validate import OriginState, Verdict, make_checker, validate_route
from .rpki.vrp import format_prefix, parse_prefix

EXPORT_ALL = ("downstream", "customer", "rs-client")
EXPORT_CUSTOMER_ROUTES = ("peer", "provider", "route-server")
#: one ``str`` per validation state, shared by every route (``str(state)`` copied it per route)
STATE_TEXT: dict[OriginState, str] = {s: s.value for s in OriginState}
BATCH = 100  # prefixes per 'announce attributes ... nlri' command (one 'done' answers a batch)
#: the action of a route held back until every RPKI source has synced once
HELD = "waiting for RPKI"
TAG_VALUE = {"valid": 0, "not-found": 1, "invalid": 2}
#: bad lines / failed routes logged in full; after that only counters (every LOG_EVERY-th)
LOG_FIRST = 20
LOG_EVERY = 1000

#: long loops (a full table going down, a full revalidation) look at ``stopping`` this often
SLICE = 1024

log = logging.getLogger("rov_router.router")


class Stopping(Exception):
    """Raised from inside long work once :attr:`RouterCore.stopping` is set, so that a stop
    request (SIGTERM) is honoured within milliseconds even amid 500k-route work."""


class Peer:
    """A configured neighbor's runtime state and its Adj-RIB-In / Adj-RIB-Out."""

    def __init__(self, config: NeighborConfig) -> None:
        self.config = config
        self.address = str(ip_address(config.address))
        self.address_int = address_int(self.address)
        self.router_id_int = self.address_int
        self.state = "idle"
        self.reason = ""
        self.since: float | None = None
        self.last_error = ""  # the last reason a session went down / NOTIFICATION, in words
        #: prefix text (the route's own ``prefix`` string, no key object per route) -> route
        self.adj_in: dict[str, Route] = {}
        #: prefix -> attribute text as last announced to this neighbor
        self.adj_out: dict[str, str] = {}
        self.eor: set[str] = set()
        #: the routes of adj_in by tally_key(): kept up to date on every change, so ``show
        #: neighbors`` costs the same on a full table being ingested as on an empty one
        self.tally: Counter[tuple[str, bool, bool, bool]] = Counter()
        self.updates = 0
        self.withdraws = 0
        self.flaps = 0

    @property
    def up(self) -> bool:
        return self.state == "up"

    def counts(self) -> dict[str, int]:
        """Routes received, accepted / dropped, by state, held and ASPA invalid: read from
        the running tally (a dozen keys at most), never a walk over the table."""
        c = {"valid": 0, "invalid": 0, "not-found": 0}
        dropped = held = aspa_invalid = 0
        for (state, accepted, is_held, aspa_bad), n in self.tally.items():
            c[state] = c.get(state, 0) + n
            dropped += n if not accepted else 0
            held += n if is_held else 0
            aspa_invalid += n if aspa_bad else 0
        received = len(self.adj_in)
        return {
            "received": received,
            "accepted": received - dropped,
            "dropped": dropped,
            **c,
            "held": held,
            "aspa_invalid": aspa_invalid,
        }

    def recount(self) -> None:
        """Rebuild the tally from adj_in (after a change to every route: release, reload)."""
        self.tally = Counter(map(tally_key, self.adj_in.values()))


def tally_key(r: Route) -> tuple[str, bool, bool, bool]:
    """What :meth:`Peer.counts` counts a route under: (state, accepted, held, ASPA invalid)."""
    a = r.aspa
    return (r.state, r.accepted, r.action == HELD, a is not None and a.state.value == "invalid")


@dataclass
class RouteEvent:
    """A route appeared, changed state or went away (for the display and logs)."""

    time: float
    kind: str  # new | state | withdrawn | flushed
    route: Route
    old_state: str | None = None


@dataclass
class PeerEvent:
    time: float
    peer: str
    state: str
    reason: str = ""


@dataclass
class Stats:
    lines: int = 0
    unparsed: int = 0
    updates: int = 0
    announced: int = 0
    withdrawn: int = 0
    revalidations: int = 0
    revalidated_routes: int = 0
    #: of those, routes whose verdict or hold changed, or that an ASPA change or a full load
    #: touched: evaluated in full (policy, ASPA)
    reevaluated_routes: int = 0
    revalidation_seconds: float = 0.0
    commands: int = 0
    #: routes whose downstream command could not be built (skipped, the others go out)
    export_errors: int = 0
    #: events the core failed on after the codec accepted them (a bug: counted, not fatal)
    internal_errors: int = 0
    last_unparsed: list[str] = field(default_factory=list)


def _log_limited(count: int, what: str, msg: str) -> bool:
    """Log the first LOG_FIRST occurrences in full, then a counter every LOG_EVERY; True when
    this occurrence was logged."""
    if count <= LOG_FIRST:
        log.warning("%s: %s", what, msg)
        if count == LOG_FIRST:
            log.warning("%s: further ones are only counted (every %d logged)", what, LOG_EVERY)
        return True
    if count % LOG_EVERY == 0:
        log.warning("%s: %d so far; last: %s", what, count, msg)
        return True
    return False


class RouterCore:
    def __init__(
        self,
        config: RouterConfig,
        store: VRPStore,
        *,
        clock: Callable[[], float] = time.time,
        keep_events: int = 2000,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.check = make_checker(store)
        self.rib = RIB()
        self.peers: dict[str, Peer] = {}
        for n in config.neighbors:
            p = Peer(n)
            self.peers[p.address] = p
        self.exporters = [p for p in self.peers.values() if p.config.role not in ("upstream",)]
        self.events: deque = deque(maxlen=keep_events)
        self.listeners: list[Callable[[object], None]] = []
        self.stats = Stats()
        self._dirty: set[tuple[bytes, int]] = set()
        self._peer_cache: dict[str, Peer] = {}
        self._replay: set[str] = set()
        self._gone: set[str] = set()  # neighbors removed by a reload
        #: routes are evaluated but not advertised until RPKI has synced once (see release())
        self.held = False
        #: attribute texts rendered during one commands() run: (id(attrs), variant) -> text;
        #: the Attributes objects are kept in _text_attrs so their ids stay unique meanwhile
        self._texts: dict[tuple, str] = {}
        self._text_attrs: list[Attributes] = []
        self._path_ases: dict[int, frozenset[int]] = {}  # id(attrs) -> the ASes of its path
        self.texts_rendered = 0
        #: set (e.g. from a signal handler) to abandon long work at the next slice
        self.stopping = False

    def _check_stop(self) -> None:
        if self.stopping:
            raise Stopping

    def hold(self) -> None:
        """Hold every route back from downstream (start-up: no RPKI data yet)."""
        self.held = True

    def release(self) -> int:
        """End the start-up hold: re-evaluate every route and advertise what the policy lets
        through on the next commands().  Returns the number of routes re-evaluated."""
        if not self.held:
            return 0
        self.held = False
        now = self.clock()
        n = 0
        for r in self.routes():
            n += 1
            self._evaluate(r)
            r.changed = now
            self._dirty.add((r.addr, r.plen))
            self._emit(RouteEvent(now, "state", r, r.state))
        for p in self.peers.values():
            p.recount()
        return n

    # ---- configuration reload ------------------------------------------------------------------

    def reconfigure(self, new: RouterConfig, restart: Iterable[str] = ()) -> dict[str, list[str]]:
        """Take a new configuration of the same router (same AS, router id, listen addresses):
        neighbors removed (their routes withdrawn downstream), added, re-created (``restart``:
        addresses whose session settings changed), and policy changes on the rest, re-evaluated
        in place without touching their sessions.  Returns what changed, by neighbor address."""
        want = {str(ip_address(n.address)): n for n in new.neighbors}
        again = set(restart)
        done: dict[str, list[str]] = {"removed": [], "added": [], "restarted": [], "changed": []}
        for addr in list(self.peers):
            if addr not in want or addr in again:
                p = self.peers.pop(addr)
                self._flush_peer(p)  # what it contributed is withdrawn downstream
                self._gone.add(addr)  # its session's last events are expected, not errors
                done["restarted" if addr in want else "removed"].append(addr)
        policy = (new.prefer_valid, new.depref_local_pref) != (
            self.config.prefer_valid,
            self.config.depref_local_pref,
        )
        for addr, nc in want.items():
            p = self.peers.get(addr)
            self._gone.discard(addr)
            if p is None:
                self.peers[addr] = Peer(nc)
                if addr not in again:
                    done["added"].append(addr)
            elif p.config != nc:
                p.config = nc
                done["changed"].append(addr)
        self.config = new
        self.exporters = [p for p in self.peers.values() if p.config.role not in ("upstream",)]
        self._peer_cache.clear()
        self._replay &= set(self.peers)
        now = self.clock()
        if policy or done["changed"]:
            for r in self.routes():  # verdicts stay; decisions may change
                old = (r.accepted, r.local_pref, r.action, r.tag)
                self._evaluate(r)
                if (r.accepted, r.local_pref, r.action, r.tag) != old:
                    r.changed = now
            for p in self.peers.values():
                p.recount()
        if any(done.values()) or policy:
            # every neighbor's Adj-RIB-Out is recomputed; commands() sends only differences
            self._dirty.update((r.addr, r.plen) for r in self.routes())
        return done

    # ---- input: ExaBGP -----------------------------------------------------------------------

    def feed_line(self, line: bytes | str) -> None:
        """One line from the bridge.  Bad lines are counted and logged, never fatal."""
        self.stats.lines += 1
        try:
            ev = X.parse_line(line)
        except X.LineError as e:
            self._unparsed(f"{e}: {e.line[:300]}")
            return
        try:
            self.handle(ev)
        except Stopping:
            raise
        except Exception as e:  # one event must never stop the router
            self.stats.internal_errors += 1
            _log_limited(
                self.stats.internal_errors,
                "internal error on an ExaBGP event",
                f"{type(e).__name__}: {e}: {str(line)[:300]}",
            )

    def _unparsed(self, msg: str) -> None:
        self.stats.unparsed += 1
        self.stats.last_unparsed = ([*self.stats.last_unparsed, msg])[-5:]
        if _log_limited(self.stats.unparsed, "unparsable ExaBGP line", msg):
            self._emit(PeerEvent(self.clock(), "-", "unparsed", msg))

    def handle(self, ev) -> None:
        if isinstance(ev, X.Update):
            self._update(ev)
        elif isinstance(ev, X.PeerState):
            self._peer_state(ev)
        elif isinstance(ev, X.Open):
            p = self._peer(ev.peer)
            if p is not None:
                p.router_id_int = address_int(ev.router_id) or p.address_int
        elif isinstance(ev, X.EndOfRib):
            p = self._peer(ev.peer)
            if p is not None:
                p.eor.add(ev.family)
        elif isinstance(ev, X.Notification):
            text = f"NOTIFICATION {notification_text(ev.code, ev.subcode)}"
            p = self._peer(ev.peer)
            if p is not None:
                p.last_error = text
            self._emit(PeerEvent(self.clock(), ev.peer, "notification", text))

    def _peer(self, address: str) -> Peer | None:
        p = self._peer_cache.get(address)
        if p is None:
            try:
                p = self.peers.get(str(ip_address(address)))
            except ValueError:
                return None
            if p is not None:
                self._peer_cache[address] = p
        return p

    def peer(self, address: str) -> Peer | None:
        """The neighbor with this address, in any spelling (``2001:DB8::1``), or None."""
        return self._peer(address)

    def _is_gone(self, address: str) -> bool:
        try:
            return str(ip_address(address)) in self._gone
        except ValueError:
            return False

    def _peer_state(self, ev: X.PeerState) -> None:
        p = self._peer(ev.peer)
        if p is None:
            if not self._is_gone(ev.peer):
                self._unparsed(f"state for unknown neighbor {ev.peer}")
            return
        now = self.clock()
        old = p.state
        reason = describe(ev.reason)
        p.state, p.reason, p.since = ev.state, reason, now
        if ev.state == "down" and reason:
            p.last_error = reason
        if ev.state == "down" and old == "up":
            p.flaps += 1
            p.eor.clear()
            self._flush_peer(p)  # ExaBGP never withdraws a dropped peer's routes
        if ev.state == "up" and p in self.exporters:
            self._replay.add(p.address)  # adj-rib-out false: we re-send our table ourselves
        if ev.state == "up" or (ev.state == "down" and old == "up"):
            # not every 'connected' / 'down' pair ExaBGP reports for each dial of an unreachable neighbor
            self._emit(PeerEvent(now, p.address, ev.state, reason))

    def _flush_peer(self, p: Peer) -> None:
        now = self.clock()
        for i, (key, r) in enumerate(list(p.adj_in.items())):
            if not i % SLICE:
                self._check_stop()
            del p.adj_in[key]
            p.tally[tally_key(r)] -= 1
            entry, _ = self.rib.remove(p, r.addr, r.plen)
            if entry is not None:
                self._dirty.add((r.addr, r.plen))
            self._emit(RouteEvent(now, "flushed", r))

    def _update(self, up: X.Update) -> None:
        p = self._peer(up.peer)
        if p is None:
            if not self._is_gone(up.peer):
                self._unparsed(f"UPDATE from unknown neighbor {up.peer}")
            return
        self.stats.updates += 1
        now = self.clock()
        local_as = self.config.asn
        for i, (_fam, prefix) in enumerate(up.withdrawn):
            if not i % SLICE:
                self._check_stop()
            try:
                addr, plen = parse_prefix(prefix)
            except ValueError as e:
                self._unparsed(f"withdraw of bad prefix from {p.address}: {e}")
                continue
            self.stats.withdrawn += 1
            p.withdraws += 1
            r = p.adj_in.pop(prefix, None)
            if r is None:
                continue  # peers withdraw what they never announced (BIRD does): a no-op
            p.tally[tally_key(r)] -= 1
            self.rib.remove(p, addr, plen)
            self._dirty.add((addr, plen))
            self._emit(RouteEvent(now, "withdrawn", r))
        origins: dict[int, int | None] = {}  # one Attributes object per UPDATE: one origin
        tally = p.tally
        for i, (fam, prefix, attrs) in enumerate(up.announced):
            if not i % SLICE:
                self._check_stop()
            try:
                addr, plen = parse_prefix(prefix)
            except ValueError as e:
                self._unparsed(f"announce of bad prefix from {p.address}: {e}")
                continue
            self.stats.announced += 1
            p.updates += 1
            origin = origins.get(id(attrs), -1)
            if origin == -1:
                origin = origins[id(attrs)] = attrs.origin_as(local_as)
            r = Route(p, fam, prefix, addr, plen, attrs, origin, now)
            self._evaluate(r)
            _entry, old = self.rib.add(r)
            if old is not None:  # the same neighbor's route for the prefix, replaced
                p.tally[tally_key(old)] -= 1
            p.adj_in[prefix] = r
            tally[tally_key(r)] += 1
            self._dirty.add((addr, plen))
            self._emit(RouteEvent(now, "new", r, old.state if old else None))

    def _evaluate(self, r: Route, state: str | None = None) -> None:
        """Validate and decide; ``state``: the origin validation verdict, when already known."""
        r.state = STATE_TEXT[self.check(r.addr, r.plen, r.origin)] if state is None else state
        cfg = r.peer.config
        d = decide(cfg.policy, r.state, depref_local_pref=self.config.depref_local_pref)
        algorithm = ALGORITHM.get(cfg.role)
        if algorithm is None:
            r.aspa = None  # generic upstream / downstream roles: no ASPA algorithm applies
        else:
            seq, sets = _sequence_and_set(r.attrs.as_path)
            r.aspa = verify_aspa(
                seq,
                self.store.aspa_providers,
                algorithm=algorithm,
                neighbor_as=cfg.asn,
                as_set=sets,
            )
        d, large = decide_aspa(
            d,
            r.aspa.state.value if r.aspa else None,
            cfg.aspa_policy,
            local_as=self.config.asn,
            depref_local_pref=self.config.depref_local_pref,
        )
        r.accepted, r.local_pref, r.action, r.ext_communities = (
            d.accepted,
            d.local_pref,
            d.action,
            d.ext_communities,
        )
        r.large_communities = large
        r.tag = r.state if cfg.policy == "tag" else None
        if self.held:
            r.action = HELD

    # ---- input: RPKI -------------------------------------------------------------------------

    def on_vrp_changes(self, changes: Changes) -> int:
        """Revalidate the routes the change can affect (RFC 8481): routes equal to or more
        specific than a changed VRP prefix (or all routes after a big first load), and routes
        whose AS path contains a customer AS whose ASPA record changed.

        A route reached only through a changed VRP prefix has its origin validation redone
        (one trie lookup); when that verdict is the one it has, nothing the route's decision
        depends on changed (its ASPA verdict needs no VRP, the policy is unchanged), so the
        rest of the evaluation is skipped.  Routes touched by an ASPA change, and every route
        after a full load, are evaluated in full."""
        t0 = time.perf_counter()
        now = self.clock()
        rov_only: list[Route] = []
        if changes.full:
            routes: Iterable[Route] = [r for e in self.rib.entries() for r in e.routes]
        else:
            seen: set[int] = set()
            lst: list[Route] = []
            if changes.aspa_customers:
                custs = changes.aspa_customers
                for r in self.routes():
                    if r.aspa is not None and not custs.isdisjoint(r.attrs.flat_path):
                        seen.add(id(r))
                        lst.append(r)
            for addr, plen in changes.prefixes:
                for e in self.rib.under(addr, plen):
                    for r in e.routes:
                        if id(r) not in seen:
                            seen.add(id(r))
                            rov_only.append(r)
            routes = lst
        n = 0
        check = self.check
        held = self.held
        # a revalidation allocates little, but a full GC pass in the middle of it walks every
        # route held (hundreds of thousands of objects): the collector waits until it is done
        with gc_paused():
            for r in rov_only:
                if not n % SLICE:
                    self._check_stop()
                n += 1
                state = STATE_TEXT[check(r.addr, r.plen, r.origin)]
                if state == r.state and (r.action == HELD) == held:
                    continue
                self._revalidate(r, now, state)
            for r in routes:
                if not n % SLICE:
                    self._check_stop()
                n += 1
                self._revalidate(r, now)
        self.stats.revalidations += 1
        self.stats.revalidated_routes += n
        self.stats.revalidation_seconds += time.perf_counter() - t0
        return n

    def _revalidate(self, r: Route, now: float, state: str | None = None) -> None:
        self.stats.reevaluated_routes += 1
        old, old_aspa, old_acc, old_act = r.state, r.aspa_state, r.accepted, r.action
        self._evaluate(r, state)
        new, aspa, acc = r.state, r.aspa_state, r.accepted
        if new != old or aspa != old_aspa or acc != old_acc:
            tally = r.peer.tally
            tally[(old, old_acc, old_act == HELD, old_aspa == "invalid")] -= 1
            tally[(new, acc, r.action == HELD, aspa == "invalid")] += 1
            r.changed = now
            self._dirty.add((r.addr, r.plen))
            self._emit(RouteEvent(now, "state", r, old))

    # ---- output ------------------------------------------------------------------------------

    def commands(self) -> list[str]:
        """Re-run best-path selection where something changed and return the ExaBGP commands
        that bring every downstream neighbor's Adj-RIB-Out in line."""
        if self.held:
            return []  # the dirty set and replays wait for release()
        out: list[str] = []
        pending: dict[str, dict[str, tuple[str, str, str] | None]] = {}
        dirty, self._dirty = self._dirty, set()  # taken whole: a failure never leaves it behind
        for i, key in enumerate(dirty):
            if not i % SLICE:
                self._check_stop()
            try:
                self._pending_for(key, pending)
            except Exception as e:  # one route must never block the others
                self.stats.export_errors += 1
                _log_limited(
                    self.stats.export_errors,
                    "cannot build the downstream command for a route",
                    f"{format_prefix(*key)}: {type(e).__name__}: {e}",
                )
                prefix = format_prefix(*key)  # fail safe: withdraw what we cannot render
                for dst in self.exporters:
                    if prefix in dst.adj_out:
                        pending.setdefault(dst.address, {})[prefix] = None
        for dst in self.exporters:
            if dst.address in self._replay:
                self._replay.discard(dst.address)
                if dst.up:
                    replay = pending.setdefault(dst.address, {})
                    for prefix, text in dst.adj_out.items():
                        replay.setdefault(prefix, ("", _family(prefix), text))
                    dst.adj_out.clear()
        for dst_addr, changes in pending.items():
            dst = self.peers[dst_addr]
            out.extend(self._render(dst, changes))
        self._texts.clear()
        self._path_ases.clear()
        self._text_attrs.clear()
        self.stats.commands += len(out)
        return out

    def _pending_for(
        self, key: tuple[bytes, int], pending: dict[str, dict[str, tuple[str, str, str] | None]]
    ) -> None:
        """Best path for one changed prefix, and what each exporter must be told about it."""
        entry = self.rib.entry(*key)
        old_best = entry.best if entry else None
        new_best = self._select(entry) if entry else None
        if entry is not None:
            entry.best = new_best
            self.rib.prune(entry, *key)
        prefix = (
            format_prefix(*key)
            if new_best is None and old_best is None
            else ((new_best or old_best).prefix)
        )
        wants = [(dst, self._export(new_best, dst)) for dst in self.exporters]
        for dst, want in wants:
            have = dst.adj_out.get(prefix)
            if want is None and have is None:
                continue
            if want is not None and have == want[2]:
                continue
            pending.setdefault(dst.address, {})[prefix] = want

    def _select(self, entry: PrefixEntry) -> Route | None:
        if len(entry.routes) == 1:  # the common case on a single full-table session
            r = entry.routes[0]
            return r if r.accepted else None
        cands = [r for r in entry.routes if r.accepted]
        if not cands:
            return None
        pv, las = self.config.prefer_valid, self.config.asn
        return min(cands, key=lambda r: best_key(r, pv, las))

    def _export(self, best: Route | None, dst: Peer) -> tuple[str, str, str] | None:
        """(prefix, family, attribute text) to announce to ``dst``, or None."""
        if best is None or best.peer is dst:
            return None
        role = dst.config.role
        if role in EXPORT_ALL:
            pass
        elif role in EXPORT_CUSTOMER_ROUTES:
            if best.peer.config.role not in ("customer", "rs-client"):
                return None
        else:
            return None
        ases = self._path_ases.get(id(best.attrs))
        if ases is None:
            ases = self._path_ases[id(best.attrs)] = frozenset(best.attrs.flat_path)
            self._text_attrs.append(best.attrs)
        if self.config.asn in ases or dst.config.asn in ases:
            return None  # loop: the neighbor would drop it anyway
        return (best.prefix, best.family, self._attributes_text(best, dst))

    def _attributes_text(self, best: Route, dst: Peer) -> str:
        """The attribute text for ``best`` towards ``dst``, rendered once per UPDATE: every
        prefix of one UPDATE shares its Attributes object, so one text serves them all."""
        las = self.config.asn
        dcfg = dst.config
        ibgp = dcfg.asn == las
        nh = self._next_hop(best, dst)
        std: tuple[tuple[int, int], ...] = ()
        large = best.large_communities
        ext: tuple[str, ...] = ()
        if best.tag is not None:
            if ibgp:  # RFC 8097: the validation state extended community stays inside the AS
                ext = (rfc8097_community(best.tag),)
            else:
                tc = best.peer.config.tag_communities
                c = tc[best.tag] if tc else (las, 0, TAG_VALUE[best.tag])
                if len(c) == 2:
                    std = (c,)  # type: ignore[assignment]
                else:
                    large = (*large, c)  # type: ignore[arg-type]
        src_ebgp = best.peer.config.asn != las
        variant = (id(best.attrs), nh, ibgp, dcfg.med, std, large, ext, src_ebgp)
        if ibgp:
            variant += (best.local_pref,)
        text = self._texts.get(variant)
        if text is None:
            text = X.attributes_text(
                best.attrs,
                next_hop=nh,
                local_as=None if ibgp else las,
                local_pref=best.local_pref if ibgp else None,
                med=dcfg.med,
                ebgp=not ibgp,
                strip_rfc8097=src_ebgp,
                extra_communities=std,
                extra_ext_communities=ext,
                extra_large_communities=large,
            )
            self._texts[variant] = text
            self._text_attrs.append(best.attrs)
            self.texts_rendered += 1
        return text

    def _next_hop(self, route: Route, dst: Peer) -> str:
        cfg = dst.config
        if cfg.next_hop == "keep":  # a route server's choice: the next hop as received
            return route.attrs.next_hop
        v6_route = route.family.startswith("ipv6")
        fixed = None if cfg.next_hop == "self" else cfg.next_hop
        if v6_route:
            if fixed is not None and ":" in fixed:
                return fixed
            if ip_address(dst.address).version != 6:
                # ExaBGP refuses 'next-hop self' for IPv6 routes on an IPv4 session
                return cfg.next_hop6 or "::ffff:" + (
                    cfg.local_address or self.config.listen.split()[0]
                )
            return "self"
        if fixed is not None and ":" not in fixed:
            return fixed
        return "self"

    def _render(self, dst: Peer, changes: dict[str, tuple[str, str, str] | None]) -> list[str]:
        out: list[str] = []
        groups: dict[tuple[str, str], list[str]] = {}
        gone: dict[str, list[str]] = {}  # withdrawals by the next hop they were announced with
        for i, (prefix, want) in enumerate(sorted(changes.items())):
            if not i % SLICE:
                self._check_stop()
            if want is None:
                had = dst.adj_out.pop(prefix, None)
                if dst.up:
                    gone.setdefault(X.withdraw_next_hop(prefix, had), []).append(prefix)
            else:
                _, fam, text = want
                dst.adj_out[prefix] = text
                groups.setdefault((fam, text), []).append(prefix)
        if dst.up:
            for nh, prefixes in gone.items():  # batched like announcements, sent first
                for i in range(0, len(prefixes), BATCH):
                    out.append(X.withdraw_command(dst.address, prefixes[i : i + BATCH], nh))
            for (_fam, text), prefixes in groups.items():
                for i in range(0, len(prefixes), BATCH):
                    out.append(X.announce_command(dst.address, text, prefixes[i : i + BATCH]))
        return out

    # ---- queries -----------------------------------------------------------------------------

    def verdict(self, r: Route) -> Verdict:
        return validate_route(self.store, r.addr, r.plen, r.origin, r.prefix)

    def routes(self) -> Iterable[Route]:
        for p in self.peers.values():
            yield from p.adj_in.values()

    def loc_rib(self) -> dict[str, Route]:
        return {e.best.prefix: e.best for e in self.rib.entries() if e.best is not None}

    def _emit(self, ev) -> None:
        self.events.append(ev)
        for fn in self.listeners:
            fn(ev)


def _sequence_and_set(segments) -> tuple[list[int], list[int]]:
    """The AS_SEQUENCE ASes (neighbor first) and the members of any AS_SET."""
    seq: list[int] = []
    sets: list[int] = []
    for kind, asns in segments:
        if kind == "sequence":
            seq.extend(asns)
        elif kind == "set":
            sets.extend(asns)
    return seq, sets


def _family(prefix: str) -> str:
    return "ipv6 unicast" if ":" in prefix else "ipv4 unicast"
