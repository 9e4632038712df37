"""The ROV report over a whole table.

* the RFC 6811 state of every route (:func:`~rov_router.rpki.validate.make_checker`);
* every invalid route split into NIST RPKI Monitor's categories, from its covering VRPs:

  - ``invalid-length``: a covering VRP names the route's origin AS, but the route is longer
    than that VRP's maxLength (the origin is right, the length is not);
  - ``invalid-as``: no covering VRP names the origin AS (or the origin is an AS_SET / the
    VRPs are AS0), and at least one covering VRP's maxLength allows the route's length;
  - ``invalid-as-length``: no covering VRP names the origin AS and every covering VRP's
    maxLength is shorter than the route (both would have to change);

* for every invalid route, the most specific route in the same table that is valid or
  not-found and covers it: the same prefix from another origin or peer (``same-prefix``) or a
  less specific prefix (``less-specific``).  Dropping the invalid route then shifts its
  traffic there; with no such route the space becomes unreachable from this table;
* the origin ASes and the VRPs behind most invalids (every covering VRP of an invalid route
  counts once for it);
* ASPA (draft-ietf-sidrops-aspa-verification) for tables with AS paths: the state of every
  path under each role assumption (received from a customer or peer: upstream algorithm;
  from a provider: downstream), and under the neighbor's real role for a running router.
"""

from __future__ import annotations

import bisect
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import pytricia

from ..rpki.aspa import ALGORITHM, verify
from ..rpki.store import VRPStore
from ..rpki.validate import INVALID, NOT_FOUND, VALID, OriginState, Verdict, make_checker
from ..rpki.vrp import VRP, format_prefix, parse_prefix
from .table import Table

CAT_AS = "invalid-as"
CAT_LENGTH = "invalid-length"
CAT_BOTH = "invalid-as-length"
CATEGORIES = (CAT_AS, CAT_LENGTH, CAT_BOTH)
SAME_PREFIX = "same-prefix"
LESS_SPECIFIC = "less-specific"
DEFAULT_ROUTE = "default-route"
COVER_KINDS = (SAME_PREFIX, LESS_SPECIFIC, DEFAULT_ROUTE, "none")


def cover_kind(plen: int, cover_plen: int) -> str:
    """``same-prefix``, ``less-specific``, or ``default-route`` when only a /0 covers it."""
    if cover_plen == plen:
        return SAME_PREFIX
    return DEFAULT_ROUTE if cover_plen == 0 else LESS_SPECIFIC


STATES = (VALID, INVALID, NOT_FOUND)
#: role assumptions for ASPA: (label, verification algorithm)
ASPA_ASSUMPTIONS = (
    ("from customer / peer (upstream)", "upstream"),
    ("from provider (downstream)", "downstream"),
)
_LOW40 = 0xFFFFFFFFFF
_ASN = 0xFFFFFFFF

#: a covering VRP as the report keeps it: (trie key text, maxlen << 32 | asn)
PackedVRP = tuple[str, int]


@contextmanager
def no_gc() -> Iterator[None]:
    """Building millions of small tuples triggers needless full collections; pause them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@lru_cache(maxsize=1 << 18)
def _prefix_text(addr: bytes, plen: int) -> str:
    return format_prefix(addr, plen)


class _VRP(VRP):
    """A VRP whose prefix text is formatted once per prefix: the reasons of 68k invalid
    routes mention ~300k covering VRPs, most of them many times."""

    __slots__ = ()

    @property
    def prefix(self) -> str:
        return _prefix_text(self.addr, self.plen)


@lru_cache(maxsize=1 << 18)
def unpack_vrp(p: PackedVRP) -> VRP:
    addr, plen = parse_prefix(p[0])
    return _VRP(addr, plen, p[1] >> 32, p[1] & _ASN)


def covering_vrps(store: VRPStore, addr: bytes, plen: int) -> list[PackedVRP]:
    """Every distinct VRP covering the prefix, most specific first (ASN order within one
    prefix, as :meth:`VRPStore.covering` lists them)."""
    t = store.trie(len(addr))
    key = t.get_key((addr, plen))
    out: list[PackedVRP] = []
    while key is not None:
        node = t[key]
        if len(node) == 2:
            out.append((key, node[1] & _LOW40))
        else:
            lows = sorted({e & _LOW40 for e in node[1:]}, key=lambda x: (x & _ASN, x))
            out.extend((key, low) for low in lows)
        key = t.parent(key)
    return out


def category(plen: int, origin: int | None, cov: list[PackedVRP]) -> str:
    """The NIST category of an invalid route from its covering VRPs (see the module doc)."""
    fits = False
    for _k, low in cov:
        asn = low & _ASN
        if origin is not None and asn == origin and asn:
            return CAT_LENGTH
        if low >> 32 >= plen:
            fits = True
    return CAT_AS if fits else CAT_BOTH


def verdict_of(
    prefix: str, plen: int, origin: int | None, cov: list[PackedVRP], state: OriginState
) -> Verdict:
    """A :class:`Verdict` (and so its reason text) from the covering VRPs."""
    if state is NOT_FOUND or not cov:
        return Verdict(NOT_FOUND, prefix, origin)
    matched: list[VRP] = []
    wrong: list[VRP] = []
    too_long: list[VRP] = []
    for p in cov:
        v = unpack_vrp(p)
        if origin is None or v.asn != origin or v.asn == 0:
            wrong.append(v)
        elif plen > v.maxlen:
            too_long.append(v)
        else:
            matched.append(v)
    return Verdict(
        VALID if matched else INVALID, prefix, origin, tuple(matched), tuple(wrong), tuple(too_long)
    )


class PrefixIndex:
    """Routes sorted by prefix: the routes equal to or more specific than a prefix form one
    contiguous run, found by bisection (RFC 8481 revalidation of a changed VRP prefix)."""

    def __init__(self, table: Table) -> None:
        keys: dict[int, list[int]] = {4: [], 16: []}
        k4, k6 = keys[4], keys[16]
        frm = int.from_bytes
        with no_gc():
            for i, (a, p) in enumerate(zip(table.addrs, table.plens, strict=True)):
                (k4 if len(a) == 4 else k6).append(((frm(a, "big") << 8 | p) << 32) | i)
            k4.sort()
            k6.sort()
        self._keys = keys

    def within(self, addr: bytes, plen: int) -> list[int]:
        """Indexes of the routes equal to or more specific than ``addr/plen``."""
        keys = self._keys[len(addr)]
        bits = len(addr) * 8
        a = int.from_bytes(addr, "big")
        end = a | ((1 << (bits - plen)) - 1)
        lo = bisect.bisect_left(keys, (a << 8 | plen) << 32)
        hi = bisect.bisect_right(keys, ((end << 8 | 0xFF) << 32) | 0xFFFFFFFF)
        return [k & 0xFFFFFFFF for k in keys[lo:hi] if (k >> 32) & 0xFF >= plen]

    def exact(self, addr: bytes, plen: int) -> list[int]:
        keys = self._keys[len(addr)]
        base = (int.from_bytes(addr, "big") << 8 | plen) << 32
        lo = bisect.bisect_left(keys, base)
        hi = bisect.bisect_right(keys, base | 0xFFFFFFFF)
        return [k & 0xFFFFFFFF for k in keys[lo:hi]]


@dataclass
class ASPASummary:
    """ASPA states per role assumption; ``states[label][i]`` is route ``i``'s state."""

    customers: int = 0
    labels: list[str] = field(default_factory=list)
    states: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[tuple[str, int], str] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            label: {s: c for s, c in Counter(v).items() if s} for label, v in self.states.items()
        }


#: the label of the ASPA column computed with each neighbor's configured role (routers only)
ACTUAL_ROLE = "neighbor's configured role"

Pick = Callable[[int], "tuple[str, int | None] | None"]


def aspa_algorithms(table: Table) -> list[tuple[str, Pick]]:
    """(label, route -> (algorithm, neighbor AS) or None) for the ASPA section of a table."""
    out: list[tuple[str, Pick]] = [
        (label, lambda _i, _a=alg: (_a, None)) for label, alg in ASPA_ASSUMPTIONS
    ]
    if table.kind == "router" and table.peers is not None:
        nbs = table.neighbors
        peers = table.peers

        def actual(i: int) -> tuple[str, int | None] | None:
            nb = nbs.get(peers[i]) or {}
            alg = ALGORITHM.get(nb.get("role") or "")
            return None if alg is None else (alg, nb.get("asn"))

        out.append((ACTUAL_ROLE, actual))
    return out


def aspa_states(
    table: Table,
    providers: Callable[[int], frozenset[int] | None],
    routes: list[int] | None = None,
    reasons: dict[tuple[str, int], str] | None = None,
) -> dict[str, list[str]]:
    """ASPA state per assumption for ``routes`` (all when None), cached per distinct path.
    An empty string: no algorithm applies (a neighbor role without one, a local route)."""
    assert table.paths is not None and table.as_sets is not None
    idx = range(len(table)) if routes is None else routes
    out: dict[str, list[str]] = {}
    cache: dict[tuple, tuple[str, str]] = {}
    for label, pick in aspa_algorithms(table):
        col: list[str] = []
        for i in idx:
            how = pick(i)
            if how is None:
                col.append("")
                continue
            path = table.paths[i]
            sets = table.as_sets[i]
            ck = (how, path, sets)
            hit = cache.get(ck)
            if hit is None:
                if not path and not sets:  # a route of the router itself: nothing to verify
                    hit = ("", "")
                else:
                    r = verify(
                        path, providers, algorithm=how[0], neighbor_as=how[1], as_set=sets or None
                    )
                    hit = (r.state.value, r.reason)
                cache[ck] = hit
            col.append(hit[0])
            if reasons is not None and hit[0] == "invalid":
                reasons[(label, i)] = hit[1]
        out[label] = col
    return out


@dataclass
class Report:
    """The result of :func:`analyze`; per-route data is indexed like the table."""

    table: Table
    vrps: int
    aspas: int
    states: list[OriginState]
    invalid: list[int]
    #: per invalid route (same order as ``invalid``): category, covering VRPs, covering route
    categories: dict[int, str]
    covering: dict[int, list[PackedVRP]]
    cover: dict[int, tuple[str, int] | None]
    aspa: ASPASummary | None = None
    #: the store the report was computed from (reasons of valid routes are looked up there)
    store: VRPStore | None = None
    _index: PrefixIndex | None = None
    _ok_trie: dict[int, pytricia.PyTricia] | None = None

    def counts(self) -> dict[str, int]:
        c = Counter(self.states)
        return {str(s): c.get(s, 0) for s in STATES}

    def category_counts(self) -> dict[str, int]:
        c = Counter(self.categories.values())
        return {k: c.get(k, 0) for k in CATEGORIES}

    def cover_counts(self) -> dict[str, int]:
        c = Counter(x[0] if x else "none" for x in self.cover.values())
        return {k: c.get(k, 0) for k in COVER_KINDS}

    def index(self) -> PrefixIndex:
        if self._index is None:
            self._index = PrefixIndex(self.table)
        return self._index

    def verdict(self, i: int) -> Verdict:
        t = self.table
        cov = self.covering.get(i)
        if cov is None and self.store is not None and self.states[i] is VALID:
            cov = covering_vrps(self.store, t.addrs[i], t.plens[i])
        return verdict_of(t.prefix(i), t.plens[i], t.origins[i], cov or [], self.states[i])

    def top_origins(self, n: int = 10) -> list[dict]:
        per: dict[int | None, Counter] = {}
        for i in self.invalid:
            c = per.setdefault(self.table.origins[i], Counter())
            c["invalid"] += 1
            c[self.categories[i]] += 1
            if self.cover[i] is None:
                c["uncovered"] += 1
        ranked = sorted(
            per.items(), key=lambda kv: (-kv[1]["invalid"], kv[0] if kv[0] is not None else -1)
        )
        return [
            {
                "origin": o,
                "invalid": c["invalid"],
                **{k: c.get(k, 0) for k in CATEGORIES},
                "uncovered": c["uncovered"],
            }
            for o, c in ranked[:n]
        ]

    def top_vrps(self, n: int = 10) -> list[dict]:
        c: Counter = Counter()
        for i in self.invalid:
            c.update(self.covering[i])
        ranked = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
        out = []
        for p, cnt in ranked[:n]:
            v = unpack_vrp(p)
            out.append(
                {
                    "vrp": str(v),
                    "prefix": v.prefix,
                    "maxLength": v.maxlen,
                    "asn": v.asn,
                    "invalids": cnt,
                }
            )
        return out

    def cover_text(self, i: int) -> str:
        c = self.cover.get(i)
        if c is None:
            return "none: dropping it makes the space unreachable from this table"
        kind, j = c
        o = self.table.origins[j]
        who = "NONE" if o is None else f"AS{o}"
        return f"{kind} {self.table.prefix(j)} {who} ({self.states[j]})"


def ok_trie(table: Table, states: list[OriginState]) -> dict[int, pytricia.PyTricia]:
    """Tries of the prefixes that have at least one valid or not-found route; the value is
    the first such route's index."""
    tries = {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)}
    t4, t6 = tries[4], tries[16]
    addrs, plens = table.addrs, table.plens
    with no_gc():
        for i in range(len(states) - 1, -1, -1):  # backwards: the first route's index wins
            if states[i] is not INVALID:
                a = addrs[i]
                (t4 if len(a) == 4 else t6)[(a, plens[i])] = i
    return tries


def find_cover(
    tries: dict[int, pytricia.PyTricia], addr: bytes, plen: int
) -> tuple[str, int] | None:
    t = tries[len(addr)]
    key = (addr, plen)
    j = t.get(key)
    if j is None:
        return None
    if t.has_key(key):
        return (SAME_PREFIX, j)
    k = t.get_key(key)
    return (cover_kind(plen, int(k[k.rindex("/") + 1 :])), j)


def analyze(store: VRPStore, table: Table, *, aspa: bool = True) -> Report:
    """The full report (see the module doc)."""
    addrs, plens, origins = table.addrs, table.plens, table.origins
    with no_gc():
        ck = {4: make_checker(store, 4), 16: make_checker(store, 6)}
        states = [ck[len(a)](a, p, o) for a, p, o in zip(addrs, plens, origins, strict=True)]
        invalid = [i for i, s in enumerate(states) if s is INVALID]
        covering: dict[int, list[PackedVRP]] = {}
        cats: dict[int, str] = {}
        for i in invalid:
            cov = covering_vrps(store, addrs[i], plens[i])
            covering[i] = cov
            cats[i] = category(plens[i], origins[i], cov)
    tries = ok_trie(table, states)
    cover = {i: find_cover(tries, addrs[i], plens[i]) for i in invalid}
    rep = Report(
        table=table,
        vrps=store.vrp_count(),
        aspas=len(store.aspas()),
        states=states,
        invalid=invalid,
        categories=cats,
        covering=covering,
        cover=cover,
        store=store,
        _ok_trie=tries,
    )
    if aspa and table.paths is not None:
        summ = ASPASummary(customers=rep.aspas)
        summ.states = aspa_states(table, store.aspa_providers, reasons=summ.reasons)
        summ.labels = list(summ.states)
        rep.aspa = summ
    return rep


def brute_force_cover(table: Table, states: list[OriginState], i: int) -> tuple[str, int] | None:
    """The covering-route answer for route ``i`` by scanning the whole table (a reference for
    tests; the report uses :func:`find_cover`)."""
    a, p = table.addrs[i], table.plens[i]
    bits = len(a) * 8
    ai = int.from_bytes(a, "big")
    best: tuple[int, int] | None = None  # (plen, index)
    for j in range(len(table)):
        if j == i or states[j] is INVALID or len(table.addrs[j]) != len(a):
            continue
        q = table.plens[j]
        if q > p:
            continue
        mask = ((1 << q) - 1) << (bits - q) if q else 0
        if ai & mask != int.from_bytes(table.addrs[j], "big"):
            continue
        if best is None or q > best[0] or (q == best[0] and j < best[1]):
            best = (q, j)
    if best is None:
        return None
    return (cover_kind(p, best[0]), best[1])


def prefix_of(table: Table, i: int) -> str:
    return format_prefix(table.addrs[i], table.plens[i])
