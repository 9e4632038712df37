"""The embedded cache's session with one router, sans-IO (no sockets, no sleeps, an injectable
clock), answering from a :class:`~rov_router.rpki.payload.PayloadSource` (the cache's
:class:`~rov_router.rtr.cache.CacheState`).

The driver (:mod:`rov_router.rtr.server`, a test or the fuzz harness) calls

* :meth:`ServerSession.receive_data` with whatever bytes arrived,
* :meth:`ServerSession.resume` once the previous answer is out of its hands,
* :meth:`ServerSession.write_blocked` / :meth:`ServerSession.write_drained` when the
  transport's write buffer goes above its high-water mark / drains again,
* :meth:`ServerSession.tick` when :meth:`ServerSession.next_deadline` passes,

and after each call writes :meth:`ServerSession.data_to_send` and acts on the returned events
(a ``"drop"`` event: abort the transport, the router is not reading).

Covered: version negotiation (serves v0, v1, v2; a newer version gets Error 4 naming 2), Reset /
Serial Query, Error Reports, bad input (garbage, unknown types, impossible lengths) answered with
the right Error Report before closing, and two timers: a half-sent PDU (Error Report Corrupt
Data after ``partial_timeout``) and a router that does not read (dropped after
``drain_timeout`` without its write buffer draining).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..rpki.payload import PayloadSource
from . import pdu as P
from .cache import MAX_VERSION

#: a router whose write buffer has not drained for this long is dropped
DRAIN_TIMEOUT = 30.0
#: a router that sent part of a PDU and nothing more for this long gets Corrupt Data
PARTIAL_TIMEOUT = 30.0


@dataclass
class ServerEvent:
    kind: str  # "log" | "close" | "served" | "drop" (abort the transport: see tick)
    message: str
    level: str = "info"


class ServerSession:
    """One router connection, sans-IO: ``receive_data`` returns events; ``data_to_send``
    returns the chunks to write."""

    def __init__(
        self,
        cache: PayloadSource,
        peer: str = "?",
        *,
        max_version: int = MAX_VERSION,
        clock: Callable[[], float] = time.monotonic,
        drain_timeout: float = DRAIN_TIMEOUT,
        partial_timeout: float = PARTIAL_TIMEOUT,
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
        self.partial_since: float | None = None
        #: since when the driver's write buffer has stayed above its high-water mark
        self.blocked_since: float | None = None
        self.drain_timeout = drain_timeout
        self.partial_timeout = partial_timeout
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

    # ---- timers ------------------------------------------------------------------------

    def write_blocked(self) -> None:
        """The transport's write buffer went above its high-water mark (the driver stopped
        writing); the drain timer runs from the first such call until :meth:`write_drained`."""
        if self.blocked_since is None:
            self.blocked_since = self.clock()

    def write_drained(self) -> None:
        self.blocked_since = None

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do (clock time), or None."""
        if self.closed:
            return None
        due = []
        if self.blocked_since is not None:
            due.append(self.blocked_since + self.drain_timeout)
        if self.partial_since is not None:
            due.append(self.partial_since + self.partial_timeout)
        return min(due) if due else None

    def tick(self, now: float | None = None) -> list[ServerEvent]:
        """Act on the timers that are due at ``now`` (default: the clock).  A router that has
        not read for ``drain_timeout`` gets a ``"drop"`` event (the driver aborts the
        transport: nothing more can be sent to it); a half-sent PDU that has waited
        ``partial_timeout`` gets an Error Report (Corrupt Data) and the session closes."""
        events: list[ServerEvent] = []
        if self.closed:
            return events
        now = self.clock() if now is None else now
        if self.blocked_since is not None and now >= self.blocked_since + self.drain_timeout:
            self.closed = True
            events.append(
                ServerEvent(
                    "drop",
                    f"not reading: nothing drained for {now - self.blocked_since:.0f} s",
                    "warning",
                )
            )
        elif self.partial_since is not None and now >= self.partial_since + self.partial_timeout:
            self._error(
                P.ErrorCode.CORRUPT_DATA,
                f"incomplete PDU ({self.framer.pending} bytes) for {self.partial_timeout:g} s",
                b"",
                [],
            )
            events.append(ServerEvent("close", f"{self.peer}: half-sent PDU timed out", "warning"))
        return events

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
