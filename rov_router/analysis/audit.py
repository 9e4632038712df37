"""ROA audit for one holder (the classes of Krill's BGP analysis, over any table).

The holder is given by its ASNs (``--asn``, repeatable) and / or its address space
(``--prefix``, repeatable):

* its ROAs: the VRPs of those ASNs (inside those prefixes when both are given, plus AS0 VRPs
  there), or every VRP at or inside the prefixes when only prefixes are given;
* its routes: the routes originated by those ASNs (inside the prefixes when both are given), or
  every route at or inside the prefixes when only prefixes are given.

Each ROA (one VRP: prefix, maxLength, ASN) gets ``SEEN`` (it authorizes at least one route in
the table) or ``UNSEEN``, and any of:

* ``REDUNDANT``: another of the holder's ROAs with the same ASN, an equal or covering prefix
  and an equal or larger maxLength authorizes everything this one does;
* ``TOO PERMISSIVE``: its maxLength authorizes more-specifics that no route in the table
  announces with its ASN, which a forged-origin hijack can use (RFC 9319);
* ``DISALLOWING``: it covers one of the holder's own routes that is invalid.

The suggested ROAs make every one of the holder's routes valid and authorize nothing else:
one per announced prefix, with a maxLength only where every more-specific down to it is
announced too (the fewest such ROAs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytricia

from ..rpki.store import VRPStore
from ..rpki.validate import INVALID
from ..rpki.vrp import VRP, format_prefix
from .report import Report

SEEN = "SEEN"
UNSEEN = "UNSEEN"
REDUNDANT = "REDUNDANT"
TOO_PERMISSIVE = "TOO PERMISSIVE"
DISALLOWING = "DISALLOWING"


@dataclass
class ROAAudit:
    vrp: VRP
    labels: list[str]
    authorizes: list[int] = field(default_factory=list)
    disallows: list[int] = field(default_factory=list)
    redundant_with: VRP | None = None
    unseen_more_specifics: int = 0
    unseen_example: str | None = None

    def explain(self, report: Report) -> str:
        t = report.table
        parts = []
        if self.authorizes:
            ex = ", ".join(t.prefix(i) for i in self.authorizes[:3])
            more = f" and {len(self.authorizes) - 3} more" if len(self.authorizes) > 3 else ""
            parts.append(f"authorizes {len(self.authorizes)} route(s): {ex}{more}")
        elif self.vrp.asn == 0:
            parts.append("AS0: authorizes nothing by design")
        else:
            parts.append("authorizes no route in the table")
        if self.redundant_with is not None:
            parts.append(f"everything it allows is allowed by {self.redundant_with}")
        if self.unseen_more_specifics:
            parts.append(
                f"maxLength {self.vrp.maxlen} allows {self.unseen_more_specifics} "
                f"more-specific(s) never announced, e.g. {self.unseen_example}"
            )
        if self.disallows:
            ex = ", ".join(
                f"{t.prefix(i)} AS{t.origins[i]}" if t.origins[i] is not None else t.prefix(i)
                for i in self.disallows[:3]
            )
            parts.append(f"makes {len(self.disallows)} of the holder's routes invalid: {ex}")
        return "; ".join(parts)


@dataclass
class AuditResult:
    asns: list[int]
    prefixes: list[str]
    roas: list[ROAAudit]
    routes: list[int]
    suggestions: list[VRP]
    #: routes in the holder's prefixes whose origin is none of the holder's ASNs
    foreign: list[int] = field(default_factory=list)

    def label_counts(self) -> dict[str, int]:
        out = {k: 0 for k in (SEEN, UNSEEN, REDUNDANT, TOO_PERMISSIVE, DISALLOWING)}
        for r in self.roas:
            for lab in r.labels:
                out[lab] += 1
        return out


def _within(a: bytes, p: int, outer: tuple[bytes, int]) -> bool:
    oa, op = outer
    if len(a) != len(oa) or p < op:
        return False
    bits = len(a) * 8
    mask = ((1 << op) - 1) << (bits - op) if op else 0
    return int.from_bytes(a, "big") & mask == int.from_bytes(oa, "big")


def audit(
    store: VRPStore,
    report: Report,
    asns: set[int] | frozenset[int] = frozenset(),
    prefixes: list[tuple[bytes, int]] | None = None,
) -> AuditResult:
    """Audit the holder's ROAs against the report's table (see the module doc)."""
    prefixes = prefixes or []
    if not asns and not prefixes:
        raise ValueError("an audit needs --asn and / or --prefix")
    table = report.table
    idx = report.index()
    states = report.states
    origins, plens, addrs = table.origins, table.plens, table.addrs
    # -- the holder's ROAs and routes
    if prefixes:
        roas: set[VRP] = set()
        for a, p in prefixes:
            roas.update(store.covered(a, p))
        if asns:
            roas = {v for v in roas if v.asn in asns or v.asn == 0}
        in_scope: set[int] = set()
        for a, p in prefixes:
            in_scope.update(idx.within(a, p))
        holder_asns = set(asns) if asns else {v.asn for v in roas if v.asn}
        routes = sorted(i for i in in_scope if not asns or origins[i] in asns)
        foreign = sorted(i for i in in_scope if origins[i] not in holder_asns)
    else:
        roas = {v for v in store.iter_vrps() if v.asn in asns}
        holder_asns = set(asns)
        routes = [i for i, o in enumerate(origins) if o in asns]
        foreign = []
    mine = set(routes)
    ordered = sorted(roas, key=lambda v: (len(v.addr), v.addr, v.plen, v.asn, v.maxlen))
    # -- redundancy: per ASN, a trie of ROA prefixes -> their maxLengths
    by_asn: dict[int, dict[int, pytricia.PyTricia]] = {}
    for v in ordered:
        tries = by_asn.setdefault(v.asn, {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)})
        t = tries[len(v.addr)]
        k = (v.addr, v.plen)
        if t.has_key(k):
            t[k] = [*t[k], v]
        else:
            t[k] = [v]
    out: list[ROAAudit] = []
    for v in ordered:
        inside = idx.within(v.addr, v.plen)
        auth = [i for i in inside if origins[i] == v.asn and plens[i] <= v.maxlen] if v.asn else []
        r = ROAAudit(v, [SEEN if auth else UNSEEN], authorizes=auth)
        r.redundant_with = _redundant(by_asn[v.asn][len(v.addr)], v)
        if r.redundant_with is not None:
            r.labels.append(REDUNDANT)
        if v.asn and v.maxlen > v.plen:
            seen = {(addrs[i], plens[i]) for i in auth}
            total = (1 << (v.maxlen - v.plen + 1)) - 1
            if total > len(seen):
                r.unseen_more_specifics = total - len(seen)
                r.unseen_example = _unseen_example(v, seen)
                r.labels.append(TOO_PERMISSIVE)
        r.disallows = [i for i in inside if i in mine and states[i] is INVALID]
        if r.disallows:
            r.labels.append(DISALLOWING)
        out.append(r)
    sugg: list[VRP] = []
    for asn in sorted(holder_asns):
        seen = {(addrs[i], plens[i]) for i in routes if origins[i] == asn}
        sugg.extend(minimal_roas(seen, asn))
    return AuditResult(
        asns=sorted(asns),
        prefixes=[format_prefix(a, p) for a, p in prefixes],
        roas=out,
        routes=routes,
        suggestions=sugg,
        foreign=foreign,
    )


def _redundant(t: pytricia.PyTricia, v: VRP) -> VRP | None:
    """Another ROA (same ASN) at this prefix or a covering one, maxLength >= v's."""
    key = t.get_key((v.addr, v.plen))
    while key is not None:
        for w in t[key]:
            if w != v and w.maxlen >= v.maxlen:
                return w
        key = t.parent(key)
    return None


def _unseen_example(v: VRP, seen: set[tuple[bytes, int]]) -> str | None:
    """The first authorized (prefix, length) no route announces, shortest first."""
    bits = len(v.addr) * 8
    base = int.from_bytes(v.addr, "big")
    for length in range(v.plen, v.maxlen + 1):
        step = 1 << (bits - length)
        for k in range(1 << (length - v.plen)):
            a = (base + k * step).to_bytes(len(v.addr), "big")
            if (a, length) not in seen:
                return format_prefix(a, length)
    return None


def minimal_roas(seen: set[tuple[bytes, int]], asn: int) -> list[VRP]:
    """The fewest ROAs for ``asn`` that authorize exactly the announced prefixes ``seen``:
    shortest prefixes first, each with the largest maxLength whose every more-specific is
    announced; prefixes already authorized by a chosen ROA are skipped."""
    chosen = {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)}
    out: list[VRP] = []
    for a, p in sorted(seen, key=lambda k: (len(k[0]), k[1], k[0])):
        t = chosen[len(a)]
        key = t.get_key((a, p))
        covered = False
        while key is not None:
            if t[key] >= p:
                covered = True
                break
            key = t.parent(key)
        if covered:
            continue
        bits = len(a) * 8
        base = int.from_bytes(a, "big")
        m = p
        while m < bits and (1 << (m + 1 - p)) <= len(seen):
            step = 1 << (bits - (m + 1))
            n = 1 << (m + 1 - p)
            if all(((base + k * step).to_bytes(len(a), "big"), m + 1) in seen for k in range(n)):
                m += 1
            else:
                break
        t[(a, p)] = m
        out.append(VRP(a, p, m, asn))
    return out
