"""What-if: which routes change state if ROAs are added or removed, a SLURM file is applied or
an ASPA record is set — revalidating only the routes the change covers (RFC 8481 §4: the
routes equal to or more specific than a changed VRP prefix; for ASPA, the paths through a
changed customer AS).

The change is applied to the analysis's own store, the affected routes are revalidated, and
the store is put back as it was before :func:`what_if` returns.  A running router is never
touched: for its routes the answer also says which would be dropped or re-admitted under the
neighbor's configured policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytricia

from ..policy import decide, decide_aspa
from ..rpki.slurm import Slurm
from ..rpki.store import Update, UpdateError, VRPStore
from ..rpki.validate import INVALID, OriginState, Verdict, make_checker
from ..rpki.vrp import VRP, VRPBatch, parse_asn, parse_prefix
from .report import (
    ACTUAL_ROLE,
    SAME_PREFIX,
    Report,
    aspa_states,
    category,
    cover_kind,
    covering_vrps,
    no_gc,
    verdict_of,
)
from .table import Table

WHAT_IF_SOURCE = "what-if"


class WhatIfError(ValueError):
    """A change cannot be understood or applied; the message names the argument."""


@dataclass
class Change:
    """VRPs to add and remove, ASPA records to set (None: remove the customer's record)."""

    add: set[VRP] = field(default_factory=set)
    remove: set[VRP] = field(default_factory=set)
    aspa: dict[int, tuple[int, ...] | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.aspa)

    def describe(self) -> list[str]:
        out = [f"add ROA {v}" for v in sorted(self.add)]
        out += [f"remove ROA {v}" for v in sorted(self.remove)]
        for c, p in sorted(self.aspa.items()):
            out.append(
                f"remove ASPA of AS{c}"
                if p is None
                else f"set ASPA AS{c} -> {', '.join(f'AS{x}' for x in p)}"
            )
        return out


def parse_roa(text: str) -> VRP:
    """``"PREFIX[-MAXLEN] ASN"`` (``ASN`` as ``64496`` or ``AS64496``) -> VRP."""
    parts = text.replace(",", " ").split()
    if len(parts) == 3 and parts[1].isdigit():  # "PREFIX MAXLEN ASN"
        parts = [f"{parts[0]}-{parts[1]}", parts[2]]
    if len(parts) != 2:
        raise WhatIfError(f"ROA {text!r}: expected 'PREFIX[-MAXLEN] ASN'")
    pfx, _, ml = parts[0].partition("-")
    try:
        addr, plen = parse_prefix(pfx)
        maxlen = int(ml) if ml else plen
        if not plen <= maxlen <= len(addr) * 8:
            raise ValueError(f"maxLength {maxlen} outside {plen}..{len(addr) * 8}")
        return VRP(addr, plen, maxlen, parse_asn(parts[1]))
    except ValueError as e:
        raise WhatIfError(f"ROA {text!r}: {e}") from None


def parse_aspa_set(text: str) -> tuple[int, tuple[int, ...] | None]:
    """``"ASN:P1,P2"`` -> (customer, providers); ``ASN:0`` is the AS0 record, ``ASN:none``
    (or ``ASN:-``) removes the customer's record."""
    cust, sep, provs = text.partition(":")
    try:
        if not sep:
            raise ValueError("expected ASN:PROVIDERS")
        c = parse_asn(cust)
        if provs.strip().lower() in ("none", "-", ""):
            return c, None
        ps = {parse_asn(p) for p in provs.replace(" ", ",").split(",") if p}
        if len(ps) > 1:
            ps.discard(0)
        return c, tuple(sorted(ps))
    except ValueError as e:
        raise WhatIfError(f"--aspa-set {text!r}: {e}") from None


def slurm_change(store: VRPStore, slurm: Slurm, change: Change | None = None) -> Change:
    """What applying a SLURM file to the current VRP set would change."""
    ch = change or Change()
    if slurm.prefix_filters:
        for net, asn in slurm.prefix_filters:
            if net is None:
                cands = (v for v in store.iter_vrps() if v.asn == asn)
            else:
                cands = (
                    v
                    for v in store.covered(net.network_address.packed, net.prefixlen)
                    if asn is None or v.asn == asn
                )
            ch.remove.update(cands)
    ch.add.update(slurm.prefix_assertions)
    for c in slurm.aspa_filters:
        if store.aspa_providers(c) is not None:
            ch.aspa[c] = None
    ch.aspa.update(slurm.aspa_assertions)
    if slurm.bgpsec_filters or slurm.bgpsec_assertions:
        ch.notes.append("BGPsec filters / assertions do not change ROV or ASPA; ignored")
    return ch


@dataclass
class RouteChange:
    index: int
    before: str  # state, or the invalid category
    after: str
    before_verdict: Verdict
    after_verdict: Verdict
    #: for a route that becomes invalid: the covering valid / not-found route after the change
    cover_after: tuple[str, int] | None = None
    #: for a running router's route: "dropped" / "re-admitted" under its neighbor's policy
    router: str | None = None


@dataclass
class ASPAChange:
    index: int
    assumption: str
    before: str
    after: str
    #: for a running router's route (its neighbor's real role): "dropped" / "re-admitted"
    router: str | None = None


@dataclass
class WhatIfResult:
    change: Change
    revalidated: int = 0
    routes: list[RouteChange] = field(default_factory=list)
    aspa_revalidated: int = 0
    aspa: list[ASPAChange] = field(default_factory=list)

    def transitions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.routes:
            k = f"{c.before} -> {c.after}"
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def router_counts(self) -> dict[str, int]:
        """Routes a running router would drop / re-admit (ROV and ASPA changes together)."""
        effect = {c.index: c.router for c in self.routes if c.router}
        effect.update({a.index: a.router for a in self.aspa if a.router})
        out = {"dropped": 0, "re-admitted": 0}
        for e in effect.values():
            out[e] += 1
        return out


def _label(state: OriginState, cat: str | None) -> str:
    return cat if state is INVALID and cat else str(state)


def _apply(store: VRPStore, change: Change) -> list[Update]:
    """Apply the VRP part of ``change``; returns the updates that undo it."""
    sources = [s for s in store.sources if s != WHAT_IF_SOURCE]
    withdraw: dict[str, list[VRP]] = {}
    for v in sorted(change.remove):
        held = [s for s in sources if store.holds(s, v)]
        if not held and not store.holds(WHAT_IF_SOURCE, v):
            raise WhatIfError(f"cannot remove ROA {v}: it is not in the VRP set")
        for s in held:
            withdraw.setdefault(s, []).append(v)
    adds = [
        v for v in sorted(change.add - change.remove) if not any(store.holds(s, v) for s in sources)
    ]
    undo: list[Update] = []
    try:
        for s, vs in withdraw.items():
            store.apply(Update(s, reset=False, vrps=VRPBatch((False, v) for v in vs)))
            undo.append(Update(s, reset=False, vrps=VRPBatch((True, v) for v in vs)))
        if adds:
            store.apply(Update(WHAT_IF_SOURCE, reset=False, vrps=VRPBatch((True, v) for v in adds)))
            undo.append(
                Update(WHAT_IF_SOURCE, reset=False, vrps=VRPBatch((False, v) for v in adds))
            )
    except UpdateError as e:  # pragma: no cover - the plan above rules these out
        _undo(store, undo)
        raise WhatIfError(f"cannot apply the change: {e}") from None
    return undo


def _undo(store: VRPStore, undo: list[Update]) -> None:
    for u in reversed(undo):
        store.apply(u)


def what_if(store: VRPStore, report: Report, change: Change) -> WhatIfResult:
    """Exactly which routes of ``report``'s table change state under ``change``; ``store``
    must be the store the report was computed from (it is left as it was)."""
    res = WhatIfResult(change)
    table = report.table
    addrs, plens, origins = table.addrs, table.plens, table.origins
    prefixes = {(v.addr, v.plen) for v in change.add | change.remove}
    affected: set[int] = set()
    if prefixes:
        idx = report.index()
        for a, p in prefixes:
            affected.update(idx.within(a, p))
    res.revalidated = len(affected)
    states = report.states
    after: dict[int, OriginState] = {}
    changed: list[tuple[int, OriginState, str, list]] = []
    undo = _apply(store, change) if prefixes else []
    try:
        with no_gc():
            ck = {4: make_checker(store, 4), 16: make_checker(store, 6)}
            for i in sorted(affected):
                a = addrs[i]
                s = ck[len(a)](a, plens[i], origins[i])
                after[i] = s
                cov = covering_vrps(store, a, plens[i]) if s is INVALID else None
                cat = category(plens[i], origins[i], cov) if cov is not None else None
                before = _label(states[i], report.categories.get(i))
                now = _label(s, cat)
                if now != before:
                    if cov is None:
                        cov = covering_vrps(store, a, plens[i])
                    changed.append((i, s, now, cov))
    finally:
        _undo(store, undo)
    for i, s, now, cov in changed:
        prefix = table.prefix(i)
        bv = (
            report.verdict(i)
            if states[i] is INVALID
            else verdict_of(
                prefix, plens[i], origins[i], covering_vrps(store, addrs[i], plens[i]), states[i]
            )
        )
        av = verdict_of(prefix, plens[i], origins[i], cov, s)
        res.routes.append(RouteChange(i, _label(states[i], report.categories.get(i)), now, bv, av))
    _covers_after(report, res, after)
    if change.aspa and table.paths is not None:
        _aspa_what_if(store, report, change, res)
    elif change.aspa:
        change.notes.append("the table has no AS paths: ASPA changes cannot be evaluated")
    aspa_after = {a.index: a.after for a in res.aspa if a.assumption == ACTUAL_ROLE}
    _router_effect(report, res, aspa_after)
    return res


def _covers_after(report: Report, res: WhatIfResult, after: dict[int, OriginState]) -> None:
    """The covering valid / not-found route, after the change, of every route that becomes
    invalid (the same answer a full recomputation would give)."""
    table = report.table
    states = report.states
    tries = report._ok_trie
    if tries is None:
        return
    idx = report.index()

    def ok(j: int) -> bool:
        return after.get(j, states[j]) is not INVALID

    touched = {(table.addrs[c.index], table.plens[c.index]) for c in res.routes}
    newly = {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)}
    for c in res.routes:
        if states[c.index] is INVALID and ok(c.index):
            a, p = table.addrs[c.index], table.plens[c.index]
            newly[len(a)][(a, p)] = c.index

    def first_ok(a: bytes, p: int, skip: int) -> int | None:
        return next((j for j in idx.exact(a, p) if j != skip and ok(j)), None)

    for c in res.routes:
        i = c.index
        if ok(i):
            continue
        a, p = table.addrs[i], table.plens[i]
        j = first_ok(a, p, i)
        if j is not None:
            c.cover_after = (SAME_PREFIX, j)
            continue
        best: tuple[int, int] | None = None
        t = tries[len(a)]
        key = t.get_key((a, p))
        while key is not None:
            ka, kp = parse_prefix(key)
            if kp < p:
                j = first_ok(ka, kp, i) if (ka, kp) in touched else t[key]
                if j is not None:
                    best = (kp, j)
                    break
            key = t.parent(key)
        n = newly[len(a)]
        key = n.get_key((a, p))
        while key is not None:
            ka, kp = parse_prefix(key)
            if kp < p:
                if best is None or kp > best[0]:
                    j = first_ok(ka, kp, i)
                    if j is not None:
                        best = (kp, j)
                break
            key = n.parent(key)
        c.cover_after = (cover_kind(p, best[0]), best[1]) if best else None


def router_accepts(t: Table, i: int, rov: str, aspa: str | None) -> bool | None:
    """Whether the router would accept route ``i`` with these states, under its neighbor's
    ROV and ASPA policies (the router's own decision functions); None: unknown policy."""
    nb = t.neighbors.get(t.peers[i] if t.peers is not None else "", {})
    try:
        d = decide(nb.get("policy") or "drop-invalid", rov)
        d, _ = decide_aspa(d, aspa or None, nb.get("aspa_policy") or "drop", local_as=0)
    except ValueError:
        return None
    return d.accepted


def _effect(t: Table, i: int, rov: str, aspa: str | None) -> str | None:
    now = router_accepts(t, i, rov, aspa)
    was = t.router_accepted[i]  # type: ignore[index]
    if now is None or now == was:
        return None
    return "re-admitted" if now else "dropped"


def _router_effect(report: Report, res: WhatIfResult, aspa_after: dict[int, str]) -> None:
    t = report.table
    if t.router_accepted is None or t.router_aspa is None:
        return
    rov_after = {c.index: c.after_verdict.state.value for c in res.routes}
    for c in res.routes:
        i = c.index
        c.router = _effect(t, i, rov_after[i], aspa_after.get(i, t.router_aspa[i]))
    for a in res.aspa:
        if a.assumption == ACTUAL_ROLE:
            i = a.index
            a.router = _effect(t, i, rov_after.get(i, str(report.states[i])), a.after)


def _aspa_what_if(store: VRPStore, report: Report, change: Change, res: WhatIfResult) -> None:
    table = report.table
    assert table.paths is not None and table.as_sets is not None and report.aspa is not None
    custs = set(change.aspa)
    routes = [
        i
        for i, (p, s) in enumerate(zip(table.paths, table.as_sets, strict=True))
        if custs.intersection(p) or custs.intersection(s)
    ]
    res.aspa_revalidated = len(routes)
    if not routes:
        return
    override = {c: (frozenset(p) if p is not None else None) for c, p in change.aspa.items()}

    def providers(c: int) -> frozenset[int] | None:
        if c in override:
            return override[c]
        return store.aspa_providers(c)

    new = aspa_states(table, providers, routes)
    for label, col in new.items():
        old = report.aspa.states[label]
        for i, s in zip(routes, col, strict=True):
            if s != old[i]:
                res.aspa.append(ASPAChange(i, label, old[i], s))
