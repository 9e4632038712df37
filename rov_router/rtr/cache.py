"""RTR cache (server side): the data model with serial history and deltas, and a sans-IO
per-router session.  The asyncio server and the file-serving front end are in
:mod:`rov_router.rtr.server`.

* :class:`CacheState` holds the current set (VRPs, Router Keys, ASPA), its serial and a
  history of deltas.  Changing the data bumps the serial (RFC 1982 addition) and records the
  minimal delta; a Serial Query from any serial still in the history is answered with the net
  change, anything else with Cache Reset.  Encoded responses are built once per (version,
  serial) and shared by every router, so a reset to ten routers costs one encoding.
* PDUs are ordered as 8210bis §11.2 requires for v2 (and recommends for v0/v1): lower PDU type
  first; announcements before withdrawals; announcements by higher address, max length, prefix
  length and ASN (so AS0 comes last), withdrawals by the lower of each (AS0 first).
* The per-router sans-IO session that answers from a :class:`CacheState` is
  :class:`rov_router.rtr.cache_session.ServerSession`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..rpki.payload import VRP, ASPARecord, RouterKey
from . import pdu as P
from .serial import Serial

MAX_VERSION = 2


@dataclass(frozen=True)
class Delta:
    """The change from ``from_serial`` to ``to_serial`` (minimal: each record at most once)."""

    from_serial: int
    to_serial: int
    vrps_added: frozenset[VRP] = frozenset()
    vrps_removed: frozenset[VRP] = frozenset()
    keys_added: frozenset[RouterKey] = frozenset()
    keys_removed: frozenset[RouterKey] = frozenset()
    #: customer -> (providers before or None, providers after or None)
    aspas: dict[int, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = field(
        default_factory=dict
    )

    def __len__(self) -> int:
        return (
            len(self.vrps_added)
            + len(self.vrps_removed)
            + len(self.keys_added)
            + len(self.keys_removed)
            + len(self.aspas)
        )


def new_session_id(avoid: int | None = None) -> int:
    """A random 16-bit session ID, different from ``avoid`` (the previous run's)."""
    while True:
        sid = secrets.randbelow(0x10000)
        if sid != avoid:
            return sid


def _order_key(v: VRP) -> int:
    # one int per VRP (addr, then maxlen, plen, asn) compares much faster than a tuple key;
    # only used within one address family
    return int.from_bytes(v.addr, "big") << 48 | v.maxlen << 40 | v.plen << 32 | v.asn


def _announce_order(vrps: Iterable[VRP]) -> list[VRP]:
    return sorted(vrps, key=_order_key, reverse=True)


def _withdraw_order(vrps: Iterable[VRP]) -> list[VRP]:
    return sorted(vrps, key=_order_key)


def _key_order(keys: Iterable[RouterKey]) -> list[RouterKey]:
    return sorted(keys, key=lambda k: (k.ski, len(k.spki), k.spki, k.asn))


class OrderedVRPs:
    """Announcements split by family and sorted once (8210bis §11.2), reusable across the
    versions a full set is encoded for."""

    def __init__(self, vrps: Iterable[VRP]) -> None:
        v4: list[VRP] = []
        v6: list[VRP] = []
        for v in vrps:
            (v4 if len(v.addr) == 4 else v6).append(v)
        self.by_family = {4: _announce_order(v4), 16: _announce_order(v6)}


def encode_payload(
    version: int,
    vrps_added: Iterable[VRP],
    vrps_removed: Iterable[VRP] = (),
    keys_added: Iterable[RouterKey] = (),
    keys_removed: Iterable[RouterKey] = (),
    aspas_announced: Iterable[ASPARecord] = (),
    aspas_withdrawn: Iterable[int] = (),
) -> bytes:
    """Payload PDUs for one response, in 8210bis §11.2 order.  Router Keys only at v1+,
    ASPA only at v2."""
    enc = P.encode_prefix
    added = vrps_added if isinstance(vrps_added, OrderedVRPs) else OrderedVRPs(vrps_added)
    removed = list(vrps_removed)
    parts: list[bytes] = []
    for fam in (4, 16):
        parts.extend(enc(version, True, v) for v in added.by_family[fam])
        parts.extend(
            enc(version, False, v)
            for v in _withdraw_order(v for v in removed if len(v.addr) == fam)
        )
    if version >= 1:
        parts.extend(P.RouterKeyPDU(version, True, k).encode() for k in _key_order(keys_added))
        parts.extend(P.RouterKeyPDU(version, False, k).encode() for k in _key_order(keys_removed))
    if version >= 2:
        parts.extend(
            P.ASPAPDU(version, True, a).encode()
            for a in sorted(aspas_announced, key=lambda a: a.customer)
        )
        parts.extend(
            P.ASPAPDU(version, False, ASPARecord(c, ())).encode() for c in sorted(aspas_withdrawn)
        )
    return b"".join(parts)


class CacheState:
    """The served data, its serial and the history of deltas (sans-IO)."""

    def __init__(
        self,
        *,
        session_id: int | None = None,
        history: int = 64,
        refresh: int = 3600,
        retry: int = 600,
        expire: int = 7200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session_id = new_session_id() if session_id is None else session_id
        self.serial = 0
        self.history_size = history
        self.refresh, self.retry, self.expire = refresh, retry, expire
        self.clock = clock
        self.vrps: frozenset[VRP] = frozenset()
        self.router_keys: frozenset[RouterKey] = frozenset()
        self.aspas: dict[int, tuple[int, ...]] = {}
        self.has_data = False
        self.updated_at: float | None = None
        self._history: list[Delta] = []
        self._full_cache: dict[int, bytes] = {}
        self._ordered: OrderedVRPs | None = None
        self._delta_cache: dict[tuple[int, int], bytes] = {}
        self.listeners: list[Callable[[int], None]] = []

    # ---- changing the data ---------------------------------------------------------------

    def set_data(
        self,
        vrps: Iterable[VRP],
        aspas: dict[int, tuple[int, ...]] | None = None,
        router_keys: Iterable[RouterKey] = (),
        *,
        vrps_removed: frozenset[VRP] | None = None,
    ) -> Delta | None:
        """Replace the served set.  Returns the delta (None when nothing changed; the first
        load is not a delta: serial 0 is the first full set).  ``vrps_removed``: the served
        VRPs missing from ``vrps``, when the caller has already worked them out."""
        new_vrps = frozenset(vrps)
        new_keys = frozenset(router_keys)
        new_aspas = {c: tuple(sorted(set(p))) for c, p in (aspas or {}).items()}
        if not self.has_data:
            self.vrps, self.router_keys, self.aspas = new_vrps, new_keys, new_aspas
            self.has_data = True
            self.updated_at = self.clock()
            self._full_cache.clear()
            self._ordered = None
            for fn in list(self.listeners):
                fn(self.serial)
            return None
        aspa_changes: dict[int, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = {}
        for c in self.aspas.keys() | new_aspas.keys():
            old, new = self.aspas.get(c), new_aspas.get(c)
            if old != new:
                aspa_changes[c] = (old, new)
        delta = Delta(
            self.serial,
            (Serial(self.serial) + 1).value,
            new_vrps - self.vrps,
            self.vrps - new_vrps if vrps_removed is None else vrps_removed,
            new_keys - self.router_keys,
            self.router_keys - new_keys,
            aspa_changes,
        )
        if not len(delta):
            return None
        self.vrps, self.router_keys, self.aspas = new_vrps, new_keys, new_aspas
        self.serial = delta.to_serial
        self.updated_at = self.clock()
        self._history.append(delta)
        if len(self._history) > self.history_size:
            del self._history[: len(self._history) - self.history_size]
        self._full_cache.clear()
        self._ordered = None
        self._delta_cache.clear()
        for fn in list(self.listeners):
            fn(self.serial)
        return delta

    def add_vrps(self, vrps: Iterable[VRP]) -> Delta | None:
        return self.set_data(self.vrps | set(vrps), self.aspas, self.router_keys)

    def remove_vrps(self, vrps: Iterable[VRP]) -> Delta | None:
        return self.set_data(self.vrps - set(vrps), self.aspas, self.router_keys)

    def set_aspa(self, customer: int, providers: Iterable[int] | None) -> Delta | None:
        """Set (or with None remove) one customer's ASPA record."""
        aspas = dict(self.aspas)
        if providers is None:
            aspas.pop(customer, None)
        else:
            aspas[customer] = tuple(sorted(set(providers)))
        return self.set_data(self.vrps, aspas, self.router_keys)

    # ---- responses ----------------------------------------------------------------------

    def oldest_serial(self) -> int:
        return self._history[0].from_serial if self._history else self.serial

    def full_payload(self, version: int) -> bytes:
        body = self._full_cache.get(version)
        if body is None:
            if self._ordered is None:
                self._ordered = OrderedVRPs(self.vrps)
            body = encode_payload(
                version,
                self._ordered,
                keys_added=self.router_keys,
                aspas_announced=[ASPARecord(c, p) for c, p in self.aspas.items()],
            )
            self._full_cache[version] = body
        return body

    def delta_payload(self, version: int, from_serial: int) -> bytes | None:
        """Net change from ``from_serial`` to now, or None: not in the history (Cache Reset)."""
        if from_serial == self.serial:
            return b""
        key = (version, from_serial)
        body = self._delta_cache.get(key)
        if body is not None:
            return body
        chain = None
        for i, d in enumerate(self._history):
            if d.from_serial == from_serial:
                chain = self._history[i:]
                break
        if chain is None:
            return None
        vrps: dict[VRP, bool] = {}
        keys: dict[RouterKey, bool] = {}
        aspa_before: dict[int, tuple[int, ...] | None] = {}
        aspa_after: dict[int, tuple[int, ...] | None] = {}
        for d in chain:
            _net(vrps, d.vrps_added, d.vrps_removed)
            _net(keys, d.keys_added, d.keys_removed)
            for c, (old, new) in d.aspas.items():
                aspa_before.setdefault(c, old)
                aspa_after[c] = new
        announce_aspa = [
            ASPARecord(c, new)
            for c, new in aspa_after.items()
            if new is not None and new != aspa_before[c]
        ]
        withdraw_aspa = [
            c for c, new in aspa_after.items() if new is None and aspa_before[c] is not None
        ]
        body = encode_payload(
            version,
            (v for v, a in vrps.items() if a),
            (v for v, a in vrps.items() if not a),
            (k for k, a in keys.items() if a),
            (k for k, a in keys.items() if not a),
            announce_aspa,
            withdraw_aspa,
        )
        self._delta_cache[key] = body
        return body

    def end_of_data(self, version: int) -> bytes:
        return P.EndOfData(
            version, self.session_id, self.serial, self.refresh, self.retry, self.expire
        ).encode()


def _net(acc: dict, added: Iterable, removed: Iterable) -> None:
    """Fold one delta into a net change: record -> True (announce) / False (withdraw)."""
    for r in added:
        if acc.get(r) is False:
            del acc[r]  # withdrawn then re-announced: no net change
        else:
            acc[r] = True
    for r in removed:
        if acc.get(r) is True:
            del acc[r]  # announced then withdrawn: no net change
        else:
            acc[r] = False
