"""The VRP table: pytricia tries for IPv4 and IPv6, data kept per source, validation on the union.

Each trie node is one VRP prefix; its value is a tuple ``(best, e1, e2, ...)``:

* ``e1..en`` ("own" entries), sorted packed ints ``source << 40 | maxlen << 32 | asn``, one per
  (source, VRP) pair at exactly this prefix (RFC 8210 §10: data is tagged by source);
* ``best``: for every origin AS that a non-AS0 VRP at this prefix *or any covering prefix*
  authorises, the largest maxLength.  A single ASN is kept as one packed int
  ``maxlen << 32 | asn`` without the source (most prefixes have one; the first source has id
  0, so its entries carry no source bits and ``best`` is the entry itself), several as a dict
  ``asn -> maxlen``, and ``NO_MATCH`` (-1) when only AS0 VRPs cover the prefix.

This layout costs about 190 bytes per single-VRP prefix next to pytricia's own node.

So RFC 6811 origin validation is a single longest-prefix lookup plus one comparison, and the
reason for a verdict is recovered by walking the covering prefixes.

Updates are applied atomically: :meth:`VRPStore.apply` first checks the whole update against
what the source holds (withdrawal of an unknown record -> error 6, duplicate announcement ->
error 7), and only if that passes changes the tries.  It returns the VRP prefixes that changed,
which is what RFC 8481 revalidation needs.

Length (~610 lines): the node layout above and every routine that reads or maintains it
(bulk load, incremental apply, lookup, reasons) have to change together.  The payload types
it stores are in :mod:`rov_router.rpki.payload`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytricia

from .payload import (
    BATCH_INT_V4,
    BATCH_INT_V6,
    VRP,
    ASPARecord,
    RouterKey,
    VRPBatch,
    format_prefix,
    parse_prefix,
)
from .payload import FULL_THRESHOLD as FULL_THRESHOLD
from .payload import Changes as Changes
from .payload import Update as Update
from .payload import UpdateError as UpdateError

_ASN_MASK = 0xFFFFFFFF
_LOW40 = 0xFFFFFFFFFF
#: ``best`` of a node covered only by AS0 VRPs: matches no origin.
NO_MATCH = -1
_SORT4 = BATCH_INT_V4
_SORT6 = BATCH_INT_V6
_LOWBIT = bytes(i & 1 for i in range(256))  # flags byte -> announce bit
Best = int | dict[int, int]


@dataclass
class SourceCounts:
    v4: int = 0
    v6: int = 0

    @property
    def total(self) -> int:
        return self.v4 + self.v6


class VRPStore:
    """VRPs, Router Keys and ASPA records from any number of sources."""

    def __init__(self) -> None:
        self._tries = {4: pytricia.PyTricia(32), 16: pytricia.PyTricia(128)}
        self._source_ids: dict[str, int] = {}
        self._counts: dict[int, SourceCounts] = {}
        self._keys: dict[str, set[RouterKey]] = {}
        self._aspas: dict[str, dict[int, tuple[int, ...]]] = {}
        self._aspa_union: dict[int, frozenset[int]] = {}

    # -- sources ----------------------------------------------------------------------------

    def _sid(self, source: str) -> int:
        sid = self._source_ids.get(source)
        if sid is None:
            sid = len(self._source_ids)  # the first source is 0: see the module docstring
            self._source_ids[source] = sid
            self._counts[sid] = SourceCounts()
            self._keys[source] = set()
            self._aspas[source] = {}
        return sid

    @property
    def sources(self) -> list[str]:
        return list(self._source_ids)

    def counts(self, source: str | None = None) -> dict[str, int]:
        """VRP / router key / ASPA counts for one source, or for the union when ``source`` is None."""
        if source is None:
            v4 = len(self._tries[4])
            v6 = len(self._tries[16])
            return {
                "vrp_prefixes_v4": v4,
                "vrp_prefixes_v6": v6,
                "vrps": self.vrp_count(),
                "router_keys": len(set().union(*self._keys.values())) if self._keys else 0,
                "aspas": len(self._aspa_union),
            }
        sid = self._source_ids.get(source)
        c = self._counts.get(sid, SourceCounts()) if sid is not None else SourceCounts()
        return {
            "vrps_v4": c.v4,
            "vrps_v6": c.v6,
            "vrps": c.total,
            "router_keys": len(self._keys.get(source, ())),
            "aspas": len(self._aspas.get(source, {})),
        }

    def vrp_count(self) -> int:
        """Distinct VRPs in the union."""
        n = 0
        for t in self._tries.values():
            for k in t:
                v = t[k]
                n += len({e & 0xFFFFFFFFFF for e in v[1:]}) if len(v) > 2 else 1
        return n

    # -- reading ----------------------------------------------------------------------------

    def trie(self, afi_len: int) -> pytricia.PyTricia:
        """The raw trie for 4-octet (IPv4) or 16-octet (IPv6) addresses (read only)."""
        return self._tries[afi_len]

    def iter_vrps(self, source: str | None = None) -> Iterator[VRP]:
        """Every VRP of one source, or of the union (each distinct VRP once)."""
        sid = self._source_ids.get(source, -1) if source is not None else None
        for t in self._tries.values():
            for k in t:
                addr, plen = parse_prefix(k)
                seen: set[int] = set()
                for e in t[k][1:]:
                    if sid is not None and e >> 40 != sid:
                        continue
                    low = e & 0xFFFFFFFFFF
                    if low in seen:
                        continue
                    seen.add(low)
                    yield VRP(addr, plen, low >> 32, low & _ASN_MASK)

    def holds(self, source: str, vrp: VRP) -> bool:
        sid = self._source_ids.get(source)
        if sid is None:
            return False
        t = self._tries[len(vrp.addr)]
        key = (vrp.addr, vrp.plen)
        if not t.has_key(key):
            return False
        return (sid << 40 | vrp.maxlen << 32 | vrp.asn) in t[key][1:]

    def router_keys(self, source: str | None = None) -> set[RouterKey]:
        if source is not None:
            return set(self._keys.get(source, ()))
        return set().union(*self._keys.values()) if self._keys else set()

    def aspas(self, source: str | None = None) -> dict[int, tuple[int, ...]]:
        """ASPA records of one source, or the union (provider sets merged per customer)."""
        if source is not None:
            return dict(self._aspas.get(source, {}))
        return {c: tuple(sorted(p)) for c, p in self._aspa_union.items()}

    def aspa_providers(self, customer: int) -> frozenset[int] | None:
        """The union of attested providers of ``customer`` (U-SPAS), or None: no attestation."""
        return self._aspa_union.get(customer)

    def lookup(self, addr: bytes, plen: int) -> tuple | None:
        """Longest-prefix match: the value of the most specific VRP prefix covering the route."""
        return self._tries[len(addr)].get((addr, plen))

    def covering(self, addr: bytes, plen: int) -> list[tuple[VRP, list[str]]]:
        """Every VRP covering the prefix (most specific first) with the sources that hold it."""
        t = self._tries[len(addr)]
        key = t.get_key((addr, plen))
        names = {sid: name for name, sid in self._source_ids.items()}
        out: list[tuple[VRP, list[str]]] = []
        while key is not None:
            vaddr, vplen = parse_prefix(key)
            by_vrp: dict[int, list[str]] = {}
            for e in t[key][1:]:
                by_vrp.setdefault(e & 0xFFFFFFFFFF, []).append(names.get(e >> 40, "?"))
            for low, srcs in sorted(by_vrp.items(), key=lambda kv: (kv[0] & _ASN_MASK, kv[0])):
                out.append((VRP(vaddr, vplen, low >> 32, low & _ASN_MASK), srcs))
            key = t.parent(key)
        return out

    def covered(self, addr: bytes, plen: int) -> list[VRP]:
        """VRPs at or below the prefix (more specific), for ``show vrps``."""
        t = self._tries[len(addr)]
        key = (addr, plen)
        out: list[VRP] = []
        keys = []
        if t.has_key(key):
            keys = [format_prefix(addr, plen), *t.children(key)]
        else:
            # Not a VRP prefix itself: insert a probe to enumerate children, then remove it.
            t.insert(key, None)
            try:
                keys = list(t.children(key))
            finally:
                t.delete(key)
        for k in keys:
            a, p = parse_prefix(k)
            lows = sorted({e & 0xFFFFFFFFFF for e in t[k][1:]})
            out.extend(VRP(a, p, low >> 32, low & _ASN_MASK) for low in lows)
        return out

    # -- writing ----------------------------------------------------------------------------

    def apply(self, update: Update) -> Changes:
        """Apply a complete update atomically.  Raises :class:`UpdateError` and changes nothing
        when the update withdraws a record the source does not hold (6) or announces one it
        already holds (7)."""
        sid = self._sid(update.source)
        fresh: tuple[list[int], list[int]] | None = None
        plan: dict[VRP, bool] = {}
        if update.reset and self._counts[sid].total == 0:
            fresh = self._plan_fresh(update.vrps)
        elif update.reset:
            plan = self._plan_reset(sid, update)
        else:
            plan = self._plan_incremental(sid, update)
        key_plan = self._plan_keys(update)
        aspa_plan = self._plan_aspas(update)
        # Nothing above changed any state; from here on, nothing can fail.
        changes = Changes(update.source)
        if fresh is not None:
            self._commit_fresh(sid, fresh, changes)
        else:
            self._commit_vrps(sid, plan, changes)
        self._commit_keys(update.source, key_plan, changes)
        self._commit_aspas(update.source, aspa_plan, changes)
        return changes

    def flush(self, source: str) -> Changes:
        """Drop everything a source holds (expiry, fatal error, cache shutdown)."""
        sid = self._source_ids.get(source)
        changes = Changes(source)
        if sid is None:
            return changes
        held = self._held(sid)
        self._commit_vrps(sid, {v: False for v in held}, changes)
        keys = self._keys[source]
        changes.router_keys_removed = len(keys)
        self._keys[source] = set()
        if self._aspas[source]:
            changes.aspa_customers = set(self._aspas[source])
            self._aspas[source] = {}
            self._rebuild_aspa_union(changes.aspa_customers)
        return changes

    def replace(
        self,
        source: str,
        vrps: Iterable[VRP],
        aspas: dict[int, tuple[int, ...]] | None = None,
        router_keys: Iterable[RouterKey] = (),
    ) -> Changes:
        """Replace a source's data with a complete set (a VRP file, a cache reset)."""
        upd = Update(source, reset=True)
        upd.vrps = VRPBatch((True, v) for v in vrps)
        upd.router_keys = [(True, k) for k in router_keys]
        upd.aspas = [(True, ASPARecord(c, tuple(p))) for c, p in (aspas or {}).items()]
        return self.apply(upd)

    def _held(self, sid: int) -> set[VRP]:
        held: set[VRP] = set()
        for t in self._tries.values():
            for k in t:
                mine = [e for e in t[k][1:] if e >> 40 == sid]
                if mine:
                    addr, plen = parse_prefix(k)
                    for e in mine:
                        held.add(VRP(addr, plen, (e >> 32) & 0xFF, e & _ASN_MASK))
        return held

    def _plan_fresh(self, batch: VRPBatch) -> tuple[list[int], list[int]]:
        """A reset transfer for a source that holds nothing: per family, a sorted list of
        ``plen | addr | maxlen | asn`` ints (sorting groups each prefix and puts shorter
        prefixes first).  Checks for withdrawals and duplicates; changes nothing."""
        if b"\x00" in bytes(batch.v4[0::12]).translate(_LOWBIT) or (
            b"\x00" in bytes(batch.v6[0::24]).translate(_LOWBIT)
        ):
            for flags, plen, maxlen, addr, asn in batch.raw():
                if not flags & 1:
                    v = VRP(addr, plen, maxlen, asn)
                    raise UpdateError(6, f"withdrawal of {v} in a reset transfer", v)
        k4 = [
            plen << 72 | addr << 40 | maxlen << 32 | asn
            for _f, plen, maxlen, addr, asn in _SORT4.iter_unpack(batch.v4)
        ]
        k6 = [
            plen << 168 | hi << 104 | lo << 40 | maxlen << 32 | asn
            for _f, plen, maxlen, hi, lo, asn in _SORT6.iter_unpack(batch.v6)
        ]
        for ks, abits in ((k4, 32), (k6, 128)):
            ks.sort()
            for i in range(1, len(ks)):
                if ks[i] == ks[i - 1]:
                    v = _unsort_key(ks[i], abits)
                    raise UpdateError(7, f"duplicate announcement of {v}", v)
        return k4, k6

    def _commit_fresh(self, sid: int, plan: tuple[list[int], list[int]], changes: Changes) -> None:
        """Insert a source's first full set.  Where the family's trie is empty, prefixes go in
        by increasing length, so the longest-prefix match of a new prefix, taken before
        inserting it, is its parent; otherwise the general path merges them."""
        counts = self._counts[sid]
        tag = sid << 40
        for ks, abits in zip(plan, (32, 128), strict=True):
            if not ks:
                continue
            alen = abits // 8
            t = self._tries[alen]
            if alen == 4:
                counts.v4 += len(ks)
            else:
                counts.v6 += len(ks)
            changes.vrps_added += len(ks)
            if len(t):
                per_key: dict[tuple[bytes, int], tuple[list[int], list[int]]] = {}
                for k in ks:
                    v = _unsort_key(k, abits)
                    per_key.setdefault((v.addr, v.plen), ([], []))[0].append(
                        tag | v.maxlen << 32 | v.asn
                    )
                changes.prefixes.update(per_key)
                self._commit_entries(per_key)
                continue
            if len(ks) > FULL_THRESHOLD:
                changes.full = True
            _insert_sorted(t, ks, abits, tag, None if changes.full else changes.prefixes)

    def _plan_reset(self, sid: int, update: Update) -> dict[VRP, bool]:
        new: set[VRP] = set()
        for announce, v in update.vrps:
            if not announce:
                raise UpdateError(6, f"withdrawal of {v} in a reset transfer", v)
            if v in new:
                raise UpdateError(7, f"duplicate announcement of {v}", v)
            new.add(v)
        held = self._held(sid)
        plan = dict.fromkeys(held - new, False)
        plan.update(dict.fromkeys(new - held, True))
        return plan

    def _plan_incremental(self, sid: int, update: Update) -> dict[VRP, bool]:
        """Net effect of the PDUs in order: VRP -> present afterwards (only real changes kept)."""
        initial: dict[VRP, bool] = {}
        state: dict[VRP, bool] = {}
        tries = self._tries
        for announce, v in update.vrps:
            present = state.get(v)
            if present is None:
                t = tries[len(v.addr)]
                key = (v.addr, v.plen)
                present = t.has_key(key) and (sid << 40 | v.maxlen << 32 | v.asn) in t[key][1:]
                initial[v] = present
            if announce and present:
                raise UpdateError(7, f"duplicate announcement of {v}", v)
            if not announce and not present:
                raise UpdateError(6, f"withdrawal of unknown record {v}", v)
            state[v] = announce
        return {v: p for v, p in state.items() if p != initial[v]}

    def _plan_keys(self, update: Update) -> tuple[set[RouterKey], set[RouterKey]] | None:
        if not update.router_keys and not update.reset:
            return None
        held = self._keys.get(update.source, set())
        cur = set() if update.reset else set(held)
        for announce, k in update.router_keys:
            if update.reset and not announce:
                raise UpdateError(6, f"withdrawal of router key {k} in a reset transfer", k)
            if announce:
                if k in cur:
                    raise UpdateError(7, f"duplicate announcement of router key {k}", k)
                cur.add(k)
            else:
                if k not in cur:
                    raise UpdateError(6, f"withdrawal of unknown router key {k}", k)
                cur.discard(k)
        return cur - held, held - cur

    def _plan_aspas(self, update: Update) -> dict[int, tuple[int, ...] | None] | None:
        """customer -> new provider tuple (None: removed).  An announce replaces (bis §5.12)."""
        if not update.aspas and not update.reset:
            return None
        held = self._aspas.get(update.source, {})
        cur: dict[int, tuple[int, ...]] = {} if update.reset else dict(held)
        for announce, rec in update.aspas:
            if announce:
                if update.reset and rec.customer in cur:
                    raise UpdateError(7, f"duplicate ASPA for AS{rec.customer} in a reset", rec)
                cur[rec.customer] = rec.providers
            else:
                if update.reset:
                    raise UpdateError(6, f"ASPA withdrawal for AS{rec.customer} in a reset", rec)
                if rec.customer not in cur:
                    raise UpdateError(6, f"withdrawal of unknown ASPA AS{rec.customer}", rec)
                del cur[rec.customer]
        plan: dict[int, tuple[int, ...] | None] = {}
        for c in held.keys() | cur.keys():
            new = cur.get(c)
            if held.get(c) != new:
                plan[c] = new
        return plan

    def _commit_keys(self, source: str, plan, changes: Changes) -> None:
        if plan is None:
            return
        added, removed = plan
        keys = self._keys[source]
        keys -= removed
        keys |= added
        changes.router_keys_added = len(added)
        changes.router_keys_removed = len(removed)

    def _commit_aspas(self, source: str, plan, changes: Changes) -> None:
        if not plan:
            return
        mine = self._aspas[source]
        for c, provs in plan.items():
            if provs is None:
                mine.pop(c, None)
            else:
                mine[c] = provs
        changes.aspa_customers |= set(plan)
        self._rebuild_aspa_union(plan.keys())

    def _rebuild_aspa_union(self, customers: Iterable[int]) -> None:
        for c in customers:
            provs: set[int] = set()
            found = False
            for recs in self._aspas.values():
                p = recs.get(c)
                if p is not None:
                    found = True
                    provs.update(p)
            if not found:
                self._aspa_union.pop(c, None)
                continue
            if len(provs) > 1:
                provs.discard(0)  # bis §10: AS0 alongside real providers is dropped
            self._aspa_union[c] = frozenset(provs)

    def _commit_vrps(self, sid: int, plan: dict[VRP, bool], changes: Changes) -> None:
        if not plan:
            return
        counts = self._counts[sid]
        # group per prefix: prefix -> (added entries, removed entries)
        per_key: dict[tuple[bytes, int], tuple[list[int], list[int]]] = {}
        tag = sid << 40
        for v, present in plan.items():
            e = tag | v.maxlen << 32 | v.asn
            k = (v.addr, v.plen)
            slot = per_key.get(k)
            if slot is None:
                slot = per_key[k] = ([], [])
            slot[0 if present else 1].append(e)
            delta = 1 if present else -1
            if len(v.addr) == 4:
                counts.v4 += delta
            else:
                counts.v6 += delta
            if present:
                changes.vrps_added += 1
            else:
                changes.vrps_removed += 1
        changes.prefixes.update(per_key)
        self._commit_entries(per_key)

    def _commit_entries(
        self, per_key: dict[tuple[bytes, int], tuple[list[int], list[int]]]
    ) -> None:
        """Add / remove packed entries per prefix, then recompute ``best`` where it may change:
        the changed prefixes and everything below them."""
        tries = self._tries
        bulk = len(per_key) * 4 >= len(tries[4]) + len(tries[16])
        affected: dict[int, set[str]] = {4: set(), 16: set()}
        for (addr, plen), (added, removed) in per_key.items():
            t = tries[len(addr)]
            key = (addr, plen)
            exists = t.has_key(key)
            own = _merge_own(t[key][1:] if exists else (), added, removed)
            aff = affected[len(addr)]
            if not own:
                if exists:
                    if not bulk:
                        aff.update(t.children(key))
                    t.delete(key)
                continue
            if exists:
                t[key] = (t[key][0], *own)
            else:
                t.insert(key, (NO_MATCH, *own))
            if not bulk:
                aff.add(format_prefix(addr, plen))
                aff.update(t.children(key))
        for alen, t in tries.items():
            keys = t.keys() if bulk else [k for k in affected[alen] if t.has_key(k)]
            for k in sorted(keys, key=_plen_of):
                v = t[k]
                parent_key = t.parent(k)
                best = _best(v[1:], t[parent_key][0] if parent_key else None)
                if best != v[0] or best.__class__ is not v[0].__class__:
                    t[k] = (best, *v[1:])


def _insert_sorted(
    t: pytricia.PyTricia, ks: list[int], abits: int, tag: int, prefixes: set | None
) -> None:
    """Fill an empty trie from sorted ``plen | addr | maxlen | asn`` keys (see _plan_fresh)."""
    amask = (1 << abits) - 1
    alen = abits // 8
    low40 = 0xFFFFFFFFFF
    get = t.get
    insert = t.insert
    cur = -1
    group: list[int] = []
    for k in (*ks, -1):  # -1: sentinel that flushes the last group
        pk = k >> 40 if k >= 0 else -2
        if pk == cur:
            group.append(tag | (k & low40))
            continue
        if group:
            key = ((cur & amask).to_bytes(alen, "big"), cur >> abits)
            parent = get(key)
            if len(group) == 1:
                e = group[0]
                if parent is None:
                    insert(key, (_untagged(e) if e & _ASN_MASK else NO_MATCH, e))
                else:
                    insert(key, (_best((e,), parent[0]), e))
            else:
                own = tuple(group)
                insert(key, (_best(own, parent[0] if parent is not None else None), *own))
            if prefixes is not None:
                prefixes.add(key)
        cur = pk
        group = [tag | (k & low40)]


def _unsort_key(k: int, abits: int) -> VRP:
    return VRP(
        ((k >> 40) & ((1 << abits) - 1)).to_bytes(abits // 8, "big"),
        k >> (abits + 40),
        (k >> 32) & 0xFF,
        k & _ASN_MASK,
    )


def _key_plen(k: tuple[bytes, int]) -> int:
    return k[1]


def _plen_of(k: str) -> int:
    return int(k[k.rindex("/") + 1 :])


def _merge_own(own: tuple[int, ...], added: list[int], removed: list[int]) -> tuple[int, ...]:
    if removed:
        rm = set(removed)
        own = tuple(e for e in own if e not in rm)
    if added:
        own = tuple(sorted((*own, *added)))
    return own


def _untagged(e: int) -> int:
    """``maxlen << 32 | asn`` of an entry: the entry itself for source 0 (no copy)."""
    return e if e <= _LOW40 else e & _LOW40


def _best(own: tuple[int, ...], parent: Best | None) -> Best:
    """asn -> largest maxLength over non-AS0 VRPs here and above (see the module docstring)."""
    if len(own) == 1:  # the common case, kept cheap: most prefixes carry one VRP
        e = own[0]
        asn = e & _ASN_MASK
        if not asn:
            return parent if parent is not None else NO_MATCH
        if parent is None:
            return _untagged(e)
        if parent.__class__ is int:
            if parent < 0:
                return _untagged(e)
            pasn = parent & _ASN_MASK
            if pasn == asn:
                return _untagged(e) if (e >> 32) & 0xFF >= (parent >> 32) & 0xFF else parent
            return {pasn: (parent >> 32) & 0xFF, asn: (e >> 32) & 0xFF}
        ml = (e >> 32) & 0xFF
        if parent.get(asn, -1) >= ml:  # type: ignore[union-attr]
            return parent  # nothing new here: share the parent's dict
        d = dict(parent)  # type: ignore[arg-type]
        d[asn] = ml
        return d
    mine = [e for e in own if e & _ASN_MASK]
    if not mine:
        return parent if parent is not None else NO_MATCH
    if parent is None or parent is NO_MATCH or parent == NO_MATCH:
        if len(mine) == 1:
            return _untagged(mine[0])
        acc: dict[int, int] = {}
    elif parent.__class__ is int:
        acc = {parent & _ASN_MASK: (parent >> 32) & 0xFF}
    else:
        acc = dict(parent)  # type: ignore[arg-type]
    for e in mine:
        asn = e & _ASN_MASK
        ml = (e >> 32) & 0xFF
        if acc.get(asn, -1) < ml:
            acc[asn] = ml
    if len(acc) == 1:
        asn, ml = next(iter(acc.items()))
        return ml << 32 | asn
    return acc
