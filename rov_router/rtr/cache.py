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
* :class:`ServerSession` answers one router: version negotiation (serves v0, v1, v2; a newer
  version gets Error 4 naming 2), Reset / Serial Query, Error Reports, and bad input (garbage,
  unknown types, impossible lengths) with the right Error Report before closing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..rpki.vrp import VRP, ASPARecord, RouterKey
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


# ---- one router's session ----------------------------------------------------------------------


@dataclass
class ServerEvent:
    kind: str  # "log" | "close" | "served"
    message: str
    level: str = "info"


class ServerSession:
    """One router connection, sans-IO: ``receive_data`` returns events; ``data_to_send``
    returns the chunks to write."""

    def __init__(
        self,
        cache: CacheState,
        peer: str = "?",
        *,
        max_version: int = MAX_VERSION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.peer = peer
        self.max_version = max_version
        self.clock = clock
        self.version: int | None = None
        self.closed = False
        self.framer = P.Framer()
        self._out: list[bytes] = []
        self.serial_served: int | None = None
        self.queries = 0
        self.resets_served = 0
        self.deltas_served = 0
        self.connected_at = clock()
        self.last_query_at: float | None = None
        self.partial_since: float | None = None
        #: complete PDUs wait in the framer behind an answer: call :meth:`resume` once the
        #: driver has sent that answer (at most one response in flight per router)
        self.holding = False

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        """Feed bytes from the router.  Stops after the first PDU that is answered; the
        rest stays buffered (:attr:`holding`) until :meth:`resume`."""
        events: list[ServerEvent] = []
        if self.closed:
            return events
        self.framer.feed(data)
        self._process(events)
        return events

    def resume(self) -> list[ServerEvent]:
        """The previous answer is out: handle the PDUs that waited behind it."""
        events: list[ServerEvent] = []
        if not self.closed and self.holding:
            self._process(events)
        return events

    def _process(self, events: list[ServerEvent]) -> None:
        self.holding = False
        it = iter(self.framer)
        try:
            for raw in it:
                before = len(self._out)
                self._handle(raw, events)
                if self.closed:
                    break
                if len(self._out) > before:
                    self.holding = True
                    break
        except P.PDUError as e:  # impossible length: the stream cannot be resynchronised
            v = self.version
            code, text = e.code, e.message
            if v is None:  # not negotiated: answer in our highest version (§7)
                v = self.max_version
                if e.pdu and e.pdu[0] <= self.max_version and e.code != 4:
                    v = e.pdu[0]
            elif e.pdu and e.pdu[0] != v:
                # established: the version byte is judged before the length (8210bis §7, as
                # OpenBGPD's rtr_parse_header): Unexpected Protocol Version
                code = P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION
                text = f"PDU in version {e.pdu[0]} on a version {v} session ({text})"
            self._error(code, text, e.pdu, events, version=v)
        finally:
            it.close()  # drops the consumed bytes from the framer
        self.holding = self.holding and self.framer.pending > 0 and not self.closed
        self.partial_since = (
            (self.partial_since or self.clock())
            if self.framer.pending and not self.closed and not self.holding
            else None
        )

    def notify(self) -> bool:
        """Queue a Serial Notify (only on an established session).  True if queued."""
        if self.closed or self.version is None:
            return False
        self._out.append(
            P.SerialNotify(self.version, self.cache.session_id, self.cache.serial).encode()
        )
        return True

    def error_and_close(self, code: int, text: str) -> None:
        """Send an Error Report (e.g. Cache Restart / Shutdown when stopping) and close."""
        if not self.closed:
            v = self.version if self.version is not None else self.max_version
            if P.error_code_valid(code, v):
                self._out.append(P.ErrorReport(v, code, b"", text).encode())
            self.closed = True

    # ---- internals ---------------------------------------------------------------------

    def _error(
        self,
        code: int,
        text: str,
        raw: bytes,
        events: list[ServerEvent],
        version: int | None = None,
    ) -> None:
        v = version if version is not None else (self.version if self.version is not None else 0)
        if not P.error_code_valid(code, v):
            code = P.ErrorCode.CORRUPT_DATA
        if not (len(raw) >= 2 and raw[1] == P.PDUType.ERROR_REPORT):
            self._out.append(P.ErrorReport(v, code, raw[:256], text).encode())
        self.closed = True
        events.append(ServerEvent("close", f"{self.peer}: {P.error_name(code)}: {text}", "warning"))

    def _handle(self, raw: bytes, events: list[ServerEvent]) -> None:
        version, ptype = raw[0], raw[1]
        if self.version is None:
            if version > self.max_version:
                # §7: answer in the highest version we speak, naming it, and disconnect
                self._error(
                    P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                    f"protocol version {version} is not supported; highest is {self.max_version}",
                    raw,
                    events,
                    version=self.max_version,
                )
                return
        elif version != self.version:
            if ptype == P.PDUType.ERROR_REPORT:
                self.closed = True
                events.append(
                    ServerEvent(
                        "close",
                        f"{self.peer}: Error Report in version "
                        f"{version} on a v{self.version} session",
                        "warning",
                    )
                )
                return
            self._error(
                P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION,
                f"PDU in version {version} on a version {self.version} session",
                raw,
                events,
            )
            return
        try:
            pdu = P.decode(raw)
        except P.PDUError as e:
            if ptype == P.PDUType.ERROR_REPORT:
                self.closed = True
                events.append(
                    ServerEvent(
                        "close", f"{self.peer}: malformed Error Report: {e.message}", "warning"
                    )
                )
                return
            self._error(e.code, e.message, e.pdu or raw, events, version=min(version, MAX_VERSION))
            return
        if isinstance(pdu, P.ErrorReport):
            self.closed = True
            events.append(
                ServerEvent(
                    "close",
                    f"{self.peer}: router reports "
                    f"{P.error_name(pdu.code)}" + (f": {pdu.text}" if pdu.text else ""),
                    "warning",
                )
            )
            return
        if not isinstance(pdu, P.ResetQuery | P.SerialQuery):
            self._error(
                P.ErrorCode.INVALID_REQUEST,
                f"{type(pdu).__name__} PDU is not a router-to-cache PDU",
                raw,
                events,
                version=version,
            )
            return
        if self.version is None:
            self.version = version
            events.append(ServerEvent("log", f"{self.peer}: RTR version {version}"))
        self.queries += 1
        self.last_query_at = self.clock()
        cache = self.cache
        v = self.version
        if not cache.has_data:
            self._out.append(
                P.ErrorReport(
                    v, P.ErrorCode.NO_DATA_AVAILABLE, b"", "no VRP data loaded yet"
                ).encode()
            )
            events.append(ServerEvent("log", f"{self.peer}: No Data Available", "warning"))
            return
        if isinstance(pdu, P.ResetQuery):
            self._serve(cache.full_payload(v), events, reset=True)
            return
        # Serial Query
        if pdu.session_id != cache.session_id:
            self._out.append(P.CacheReset(v).encode())
            events.append(
                ServerEvent(
                    "log",
                    f"{self.peer}: Serial Query for session "
                    f"{pdu.session_id} (ours {cache.session_id}): "
                    "Cache Reset",
                )
            )
            return
        body = cache.delta_payload(v, pdu.serial)
        if body is None:
            self._out.append(P.CacheReset(v).encode())
            events.append(
                ServerEvent(
                    "log",
                    f"{self.peer}: serial {pdu.serial} is not in the "
                    f"history (oldest {cache.oldest_serial()}, now "
                    f"{cache.serial}): Cache Reset",
                )
            )
            return
        self._serve(body, events, reset=False, from_serial=pdu.serial)

    def _serve(
        self, body: bytes, events: list[ServerEvent], *, reset: bool, from_serial: int | None = None
    ) -> None:
        v = self.version
        assert v is not None
        c = self.cache
        self._out.append(P.CacheResponse(v, c.session_id).encode())
        if body:
            self._out.append(body)
        self._out.append(c.end_of_data(v))
        self.serial_served = c.serial
        if reset:
            self.resets_served += 1
        else:
            self.deltas_served += 1
        what = "full set" if reset else f"delta from serial {from_serial}"
        events.append(
            ServerEvent(
                "served", f"{self.peer}: {what} -> serial {c.serial} ({len(body)} bytes, v{v})"
            )
        )
