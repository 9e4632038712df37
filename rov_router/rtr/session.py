"""Router-side RTR session: a sans-IO state machine (no sockets, no sleeps, an injectable clock).

The driver (asyncio client, test, or dump replay) calls

* :meth:`ClientSession.connection_made` when a transport is up,
* :meth:`ClientSession.receive_data` with whatever bytes arrived,
* :meth:`ClientSession.update_done` after applying an :class:`UpdateReady` to the store,
* :meth:`ClientSession.connection_lost` when the transport went away,
* :meth:`ClientSession.tick` when :meth:`ClientSession.next_deadline` passes,

and after each call sends :meth:`ClientSession.data_to_send` and acts on the returned events.
Processing pauses after an :class:`UpdateReady` until :meth:`update_done` is called, so the
store's verdict on the update (duplicate / unknown withdraw) is known before further PDUs.

Covered: version negotiation and downgrade (RFC 8210 §7, bis §7), session IDs, RFC 1982 serial
arithmetic, Serial Notify, Cache Reset, Error Reports with per-version codes and fatal vs
non-fatal handling (bis §12), refresh / retry / expire timers (RFC 8210 §6), a bound on the
wait for End of Data (bis §11.4), and StayRTR 0.5.1's draft-10 ASPA layout.

Length (~840 lines): one state machine.  Every handler reads and sets the same state (version,
session ID, serial, pending transfer, timers), so splitting it across modules would spread one
transition table over several files; the PDU codec, serial arithmetic and payload types are
already elsewhere.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ..rpki.payload import ASPARecord, Update, UpdateError
from . import pdu as P
from .serial import Serial

# RFC 8210 §6 ranges and recommended defaults (also used for v0, which has no timers on the wire)
REFRESH_RANGE = (1, 86400)
RETRY_RANGE = (1, 7200)
EXPIRE_RANGE = (600, 172800)
DEFAULT_REFRESH = 3600
DEFAULT_RETRY = 600
DEFAULT_EXPIRE = 7200
#: records one transfer may carry before it is abandoned: about 10x the largest real table
#: (production RPKI: ~600k VRPs); the pending records take 12-24 bytes each
DEFAULT_MAX_RECORDS = 6_000_000
#: Error Report / fatal error texts kept (the rest are only counted)
DEFAULT_MAX_ERRORS = 16


class State(Enum):
    DISCONNECTED = "disconnected"
    NEGOTIATING = "negotiating"  # first query sent on this connection, version not settled
    WAITING = "waiting"  # query sent, waiting for Cache Response
    RECEIVING = "receiving"  # between Cache Response and End of Data
    ESTABLISHED = "established"  # in sync, waiting for the refresh timer or a Serial Notify
    CLOSED = "closed"  # the session ended on this connection; the driver must close it


# ---- events ----------------------------------------------------------------------------------


@dataclass
class Event:
    pass


@dataclass
class Log(Event):
    level: str  # "debug" | "info" | "warning" | "error"
    message: str


@dataclass
class UpdateReady(Event):
    """A complete transfer ended with End of Data: apply it, then call ``update_done``."""

    update: Update
    serial: int
    session_id: int
    version: int


@dataclass
class Synced(Event):
    serial: int
    session_id: int
    version: int
    reset: bool
    records: int


@dataclass
class FlushRequired(Event):
    """Drop all data held from this cache (fatal error, expiry, cache shutdown)."""

    reason: str


@dataclass
class ErrorReceived(Event):
    code: int
    text: str
    fatal: bool


@dataclass
class ErrorSent(Event):
    code: int
    text: str


@dataclass
class VersionChanged(Event):
    old: int
    new: int
    reason: str


@dataclass
class CloseConnection(Event):
    """Close the transport; reconnect after ``reconnect_after`` seconds."""

    reason: str
    reconnect_after: float


@dataclass
class NotifyReceived(Event):
    serial: int


@dataclass
class Timers:
    refresh: int = DEFAULT_REFRESH
    retry: int = DEFAULT_RETRY
    expire: int = DEFAULT_EXPIRE


@dataclass
class SessionInfo:
    """A snapshot for status output."""

    source: str
    state: str
    version: int
    session_id: int | None
    serial: int | None
    timers: Timers
    last_update: float | None
    expires_in: float | None
    refresh_in: float | None
    updates: int
    resets: int
    errors: list[str] = field(default_factory=list)


class ClientSession:
    """One cache's RTR session, router side."""

    def __init__(
        self,
        source: str = "cache",
        *,
        max_version: int = 2,
        min_version: int = 0,
        clock: Callable[[], float] = time.monotonic,
        aspa_compat: str | None = None,
        transfer_timeout: float = 300.0,
        timers: Timers | None = None,
        keep_timers: bool = False,
        min_expire: int = EXPIRE_RANGE[0],
        max_records: int = DEFAULT_MAX_RECORDS,
        max_errors: int = DEFAULT_MAX_ERRORS,
    ) -> None:
        if not 0 <= min_version <= max_version <= 2:
            raise ValueError(
                f"need 0 <= min_version ({min_version}) <= max_version ({max_version}) <= 2"
            )
        if aspa_compat not in (None, "draft10"):
            raise ValueError("aspa_compat must be None or 'draft10'")
        self.source = source
        #: the lowest Expire accepted from a cache: RFC 8210 §6 says 600 s; teaching labs that
        #: show a cache outage in seconds lower it (never for real operation)
        self.min_expire = min_expire
        self.min_version = min_version
        self.max_version = max_version
        self.clock = clock
        self.aspa_compat = aspa_compat
        self.transfer_timeout = transfer_timeout
        #: a transfer with more records than this is abandoned (the table stays as it was)
        self.max_records = max_records
        self.keep_timers = keep_timers
        self.timers = timers or Timers()
        # negotiated / held epoch
        self.version = max_version
        self.session_id: int | None = None
        self.serial: int | None = None
        #: protocol version of the held session (bis §5.1: sessions are per version)
        self._held_version: int | None = None
        self.have_data = False
        self.state = State.DISCONNECTED
        # per connection
        self._framer = P.Framer()
        self._out = bytearray()
        self._pending: Update | None = None
        self._pending_sid: int | None = None
        self._sent_reset = False
        self._paused: UpdateReady | None = None
        self._notify_serial: int | None = None
        self._rx_any = False
        # timers (clock values)
        self._last_success: float | None = None
        self._refresh_at: float | None = None
        self._expire_at: float | None = None
        self._transfer_deadline: float | None = None
        self._closes_before_reply = 0
        self.updates = 0
        self.resets = 0
        #: the last ``max_errors`` error texts; ``errors_total`` counts them all
        self.errors: deque[str] = deque(maxlen=max(1, max_errors))
        self.errors_total = 0

    # ---- driver API ---------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def connection_made(self) -> list[Event]:
        self._framer = P.Framer()
        self._out.clear()
        self._pending = None
        self._paused = None
        self._rx_any = False
        self._notify_serial = None
        self.state = State.NEGOTIATING
        events: list[Event] = []
        self._send_query()
        return events

    def connection_lost(self) -> list[Event]:
        events: list[Event] = []
        if self.state is State.NEGOTIATING and not self._rx_any:
            # RFC 8210 §7: a v0 cache may just drop a v1 query; the router MAY retry lower.
            self._closes_before_reply += 1
            if (
                self._closes_before_reply >= 2
                and self.version > self.min_version
                and not self.have_data
            ):
                self._downgrade(
                    self.version - 1,
                    "the cache closed the connection twice without "
                    "answering a query at this version",
                    events,
                )
                self._closes_before_reply = 0
        if self._pending is not None:
            events.append(
                Log(
                    "warning",
                    f"{self.source}: connection lost during a transfer; "
                    f"{len(self._pending)} pending records discarded, "
                    "table unchanged",
                )
            )
        self._pending = None
        self._paused = None
        self._transfer_deadline = None
        self.state = State.DISCONNECTED
        return events

    def receive_data(self, data: bytes) -> list[Event]:
        if data:
            self._rx_any = True
            self._framer.feed(data)
        events: list[Event] = []
        if self._paused is None and self.state is not State.CLOSED:
            self._process(events)
        return events

    def update_done(self, error: UpdateError | None = None) -> list[Event]:
        """Tell the session whether the store accepted the last :class:`UpdateReady`."""
        ready = self._paused
        if ready is None:
            raise RuntimeError("update_done() without a pending UpdateReady")
        self._paused = None
        events: list[Event] = []
        if error is not None:
            rec = error.record
            raw = b""
            announce = error.code == P.ErrorCode.DUPLICATE_ANNOUNCEMENT
            if hasattr(rec, "maxlen"):
                raw = P.encode_prefix(ready.version, announce, rec)  # type: ignore[arg-type]
            elif hasattr(rec, "spki"):
                raw = P.RouterKeyPDU(ready.version, announce, rec).encode()  # type: ignore[arg-type]
            elif hasattr(rec, "providers"):
                raw = P.ASPAPDU(ready.version, announce, rec).encode()  # type: ignore[arg-type]
            self._fatal(error.code, str(error), raw, events, flush=True)
            return events
        now = self.clock()
        self.serial = ready.serial
        self.session_id = ready.session_id
        self.version = ready.version
        self._held_version = ready.version
        self.have_data = True
        self._closes_before_reply = 0
        self._last_success = now
        self._refresh_at = now + self.timers.refresh
        self._expire_at = now + self.timers.expire
        self._transfer_deadline = None
        self.updates += 1
        if ready.update.reset:
            self.resets += 1
        events.append(
            Synced(
                ready.serial, ready.session_id, ready.version, ready.update.reset, len(ready.update)
            )
        )
        self.state = State.ESTABLISHED
        notified = self._notify_serial
        self._notify_serial = None
        if notified is not None and notified != ready.serial:
            # a Serial Notify during the transfer announced a newer serial than we received
            self._send_serial_query()
        self._process(events)
        return events

    def tick(self) -> list[Event]:
        """Run due timers: expire (flush), transfer timeout, refresh (send Serial Query)."""
        now = self.clock()
        events: list[Event] = []
        if self.have_data and self._expire_at is not None and now >= self._expire_at:
            events.append(
                Log(
                    "warning",
                    f"{self.source}: no successful update for "
                    f"{self.timers.expire} s (expire interval); "
                    "dropping its data",
                )
            )
            self._forget(events, "expire interval passed without a successful update")
            if self.state is State.ESTABLISHED:
                # connected and idle: the refresh timer went with the data, so poll afresh now
                self._send_reset_query()
        if self._transfer_deadline is not None and now >= self._transfer_deadline:
            self._transfer_deadline = None
            if self.state in (State.WAITING, State.RECEIVING, State.NEGOTIATING):
                self.state = State.CLOSED
                self._pending = None
                events.append(
                    CloseConnection(
                        f"no End of Data within {self.transfer_timeout:g} s", self.timers.retry
                    )
                )
        if (
            self.state is State.ESTABLISHED
            and self._refresh_at is not None
            and now >= self._refresh_at
        ):
            self._send_serial_query()
        return events

    def next_deadline(self) -> float | None:
        ds = []
        if self.have_data and self._expire_at is not None:
            ds.append(self._expire_at)
        if self._transfer_deadline is not None:
            ds.append(self._transfer_deadline)
        if self.state is State.ESTABLISHED and self._refresh_at is not None:
            ds.append(self._refresh_at)
        return min(ds) if ds else None

    def retry_delay(self) -> float:
        return float(self.timers.retry)

    @property
    def pending_records(self) -> int:
        """Records received so far in the sync that is running (0 when none is)."""
        return len(self._pending) if self._pending is not None else 0

    def info(self) -> SessionInfo:
        now = self.clock()
        return SessionInfo(
            source=self.source,
            state=self.state.value,
            version=self.version,
            session_id=self.session_id,
            serial=self.serial,
            timers=self.timers,
            last_update=self._last_success,
            expires_in=(self._expire_at - now) if self.have_data and self._expire_at else None,
            refresh_in=(self._refresh_at - now) if self._refresh_at else None,
            updates=self.updates,
            resets=self.resets,
            errors=list(self.errors)[-5:],
        )

    # ---- internals ---------------------------------------------------------------------------

    def _send(self, pdu: P.PDU) -> None:
        self._out += pdu.encode()

    def _send_query(self) -> None:
        if (
            self.have_data
            and self.session_id is not None
            and self.serial is not None
            and self._held_version == self.version  # a session of another version: reset
        ):
            self._send_serial_query()
        else:
            self._send_reset_query()

    def _send_reset_query(self) -> None:
        self._send(P.ResetQuery(self.version))
        self._sent_reset = True
        self._start_wait()

    def _send_serial_query(self) -> None:
        assert self.session_id is not None and self.serial is not None
        self._send(P.SerialQuery(self.version, self.session_id, self.serial))
        self._sent_reset = False
        self._start_wait()

    def _start_wait(self) -> None:
        if self.state is not State.NEGOTIATING:
            self.state = State.WAITING
        self._transfer_deadline = self.clock() + self.transfer_timeout
        self._refresh_at = None

    def _forget(self, events: list[Event], reason: str) -> None:
        """Drop the held epoch: data flushed, next query is a Reset Query."""
        if self.have_data:
            events.append(FlushRequired(reason))
        self.have_data = False
        self.session_id = None
        self.serial = None
        self._expire_at = None
        self._refresh_at = None

    def _fatal(
        self,
        code: int,
        text: str,
        raw: bytes,
        events: list[Event],
        *,
        flush: bool = True,
        send: bool = True,
    ) -> None:
        """Send an Error Report (unless replying to one), end the session, flush the cache."""
        if not P.error_code_valid(code, self.version):
            code = P.ErrorCode.CORRUPT_DATA
        if send and not (len(raw) >= 2 and raw[1] == P.PDUType.ERROR_REPORT):
            self._send(P.ErrorReport(self.version, code, raw[:256], text))
            events.append(ErrorSent(code, text))
        msg = f"{self.source}: {P.error_name(code)}: {text}"
        self._note_error(msg)
        events.append(Log("error", msg))
        self._pending = None
        if flush:
            self._forget(events, f"fatal error: {P.error_name(code)}")
        self.state = State.CLOSED
        events.append(CloseConnection(msg, self.timers.retry))

    def _note_error(self, msg: str) -> None:
        self.errors_total += 1
        self.errors.append(msg if len(msg) <= 1000 else msg[:1000] + " [...]")

    def _too_many_records(self, events: list[Event]) -> bool:
        """Abandon a transfer past ``max_records``: the table is left as it was."""
        if self._pending is None or len(self._pending) <= self.max_records:
            return False
        n = len(self._pending)
        msg = (
            f"{self.source}: transfer abandoned: more than {self.max_records} records in one "
            f"Cache Response ({n} pending; max_records); table unchanged"
        )
        self._note_error(msg)
        events.append(Log("error", msg))
        self._pending = None
        self._transfer_deadline = None
        self.state = State.CLOSED
        events.append(CloseConnection(msg, self.timers.retry))
        return True

    def _downgrade(self, new: int, reason: str, events: list[Event]) -> None:
        old = self.version
        self.version = new
        events.append(VersionChanged(old, new, reason))
        events.append(Log("warning", f"{self.source}: RTR version {old} -> {new}: {reason}"))

    def _process(self, events: list[Event]) -> None:
        framer = self._framer
        try:
            while True:
                if self.state is State.RECEIVING and self._pending is not None:
                    framer.take_prefixes(self.version, self._pending.vrps)
                    if self._too_many_records(events):
                        break
                progressed = False
                for raw in framer:
                    progressed = True
                    self._handle(raw, events)
                    if (
                        self._paused is not None
                        or self.state is State.CLOSED
                        or self.state is State.RECEIVING
                    ):
                        break
                if not progressed or self._paused is not None or self.state is State.CLOSED:
                    break
        except P.PDUError as e:
            # framing-level error (impossible length); the stream cannot be resynchronised.
            # On an established session the version byte is judged first (8210bis §7; the
            # order of OpenBGPD's rtr_parse_header): another version is Error 8, whatever the
            # length; during negotiation an unknown version stays Error 4.
            code, text = e.code, e.message
            if self.state is not State.NEGOTIATING and e.pdu and e.pdu[0] != self.version:
                code = P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION
                text = f"PDU in version {e.pdu[0]} on a version {self.version} session ({text})"
            self._fatal(code, text, e.pdu, events)

    def _handle(self, raw: bytes, events: list[Event]) -> None:
        version, ptype = raw[0], raw[1]
        negotiating = self.state is State.NEGOTIATING
        if ptype == P.PDUType.SERIAL_NOTIFY and negotiating:
            return  # bis §7: ignored before negotiation completes, whatever its version
        if negotiating and ptype == P.PDUType.ERROR_REPORT:
            # may be a version error written in any version the cache likes
            try:
                err = P.decode(raw)
            except P.PDUError as e:
                self._fatal(e.code, f"malformed Error Report: {e.message}", raw, events, send=False)
                return
            assert isinstance(err, P.ErrorReport)
            self._on_error_report(err, events)
            return
        if negotiating and version != self.version:
            if version > self.version or version not in P.SUPPORTED_VERSIONS:
                self._fatal(
                    P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                    f"cache answered with version {version}; we asked for {self.version}",
                    raw,
                    events,
                    flush=False,
                )
                return
            if version < self.min_version:
                self._fatal(
                    P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
                    f"cache answered with version {version}, below min-version {self.min_version}",
                    raw,
                    events,
                    flush=False,
                )
                return
            # RFC 8210 §7: a lower-version reply means the cache speaks that version only
            self._downgrade(version, f"the cache answered in version {version}", events)
            if not self._sent_reset:
                # we asked to resume a session of the higher version; a reply in another
                # version belongs to another session (bis §5.1): start afresh at this version
                self.state = State.CLOSED
                events.append(
                    CloseConnection(f"reconnecting with a Reset Query at version {version}", 0.0)
                )
                return
        elif not negotiating and version != self.version:
            if ptype == P.PDUType.ERROR_REPORT:
                self._fatal(
                    P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION,
                    f"Error Report in version {version} on a version {self.version} session",
                    raw,
                    events,
                    send=False,
                )
            else:
                self._fatal(
                    P.ErrorCode.UNEXPECTED_PROTOCOL_VERSION,
                    f"PDU type {ptype} in version {version} on a version {self.version} session",
                    raw,
                    events,
                )
            return
        try:
            pdu = P.decode(raw, aspa_draft10=self.aspa_compat == "draft10")
        except P.LegacyASPALayout as e:
            self._on_legacy_aspa(e, raw, events)
            return
        except P.PDUError as e:
            self._fatal(
                e.code, e.message, e.pdu or raw, events, send=ptype != P.PDUType.ERROR_REPORT
            )
            return
        self._dispatch(pdu, raw, events)

    def _on_legacy_aspa(self, e: P.PDUError, raw: bytes, events: list[Event]) -> None:
        if self.min_version >= 2:
            self._fatal(
                e.code, e.message + "; min-version 2 forbids falling back to v1", raw, events
            )
            return
        # one short line for the user (the downgrade warning); the details at -v
        reason = "the cache sends draft-8210bis-10 ASPA PDUs (--aspa-compat draft10 reads them)"
        events.append(
            Log(
                "info",
                f"{self.source}: the ASPA PDUs carry flags, AFI and a provider count in the body "
                "(the draft-8210bis-10 layout, as StayRTR 0.5.1 sends), which this client does "
                "not parse by default; reconnecting at RTR v1, without ASPA",
            )
        )
        self.max_version = min(self.max_version, 1)
        self._pending = None
        self._downgrade(1, reason, events)
        self.state = State.CLOSED
        events.append(CloseConnection("reconnecting at RTR v1 (draft-10 ASPA layout)", 0.0))

    def _dispatch(self, pdu: P.PDU, raw: bytes, events: list[Event]) -> None:
        st = self.state
        if isinstance(pdu, P.PrefixPDU | P.RouterKeyPDU | P.ASPAPDU):
            if st is not State.RECEIVING or self._pending is None:
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA,
                    f"payload PDU outside a Cache Response..End of Data transfer "
                    f"(state {st.value})",
                    raw,
                    events,
                )
                return
            if isinstance(pdu, P.PrefixPDU):
                self._pending.vrps.append((pdu.announce, pdu.vrp))
            elif isinstance(pdu, P.RouterKeyPDU):
                self._pending.router_keys.append((pdu.announce, pdu.key))
            else:
                self._add_aspa(pdu)
            self._too_many_records(events)
            return
        if isinstance(pdu, P.CacheResponse):
            if st not in (State.NEGOTIATING, State.WAITING):
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA, f"Cache Response in state {st.value}", raw, events
                )
                return
            if not self._sent_reset and pdu.session_id != self.session_id:
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA,
                    f"Cache Response session ID {pdu.session_id} differs from the held "
                    f"session {self.session_id}",
                    raw,
                    events,
                )
                return
            self.state = State.RECEIVING
            self._pending = Update(self.source, reset=self._sent_reset)
            self._pending_sid = pdu.session_id
            return
        if isinstance(pdu, P.EndOfData):
            if st is not State.RECEIVING or self._pending is None:
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA, f"End of Data in state {st.value}", raw, events
                )
                return
            if pdu.session_id != self._pending_sid:
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA,
                    f"End of Data session ID {pdu.session_id} differs from the Cache "
                    f"Response's {self._pending_sid}",
                    raw,
                    events,
                )
                return
            if pdu.version >= 1 and not self.keep_timers:
                self._set_timers(pdu, events)
            upd = self._pending
            self._pending = None
            ready = UpdateReady(upd, pdu.serial, pdu.session_id, self.version)
            self._paused = ready
            events.append(ready)
            return
        if isinstance(pdu, P.CacheReset):
            if (st is State.NEGOTIATING and self._sent_reset) or (
                st is State.WAITING and self._sent_reset
            ):
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA, "Cache Reset in answer to a Reset Query", raw, events
                )
                return
            if st not in (State.NEGOTIATING, State.WAITING):
                self._fatal(
                    P.ErrorCode.CORRUPT_DATA, f"Cache Reset in state {st.value}", raw, events
                )
                return
            # bis §8.3: no incremental update available; keep the data until the new set is in
            events.append(
                Log(
                    "info",
                    f"{self.source}: Cache Reset: the cache cannot give a delta "
                    f"from serial {self.serial}; sending Reset Query",
                )
            )
            self.state = State.WAITING if st is State.WAITING else State.NEGOTIATING
            self._send_reset_query()
            return
        if isinstance(pdu, P.SerialNotify):
            if self.session_id is not None and pdu.session_id != self.session_id:
                events.append(
                    Log(
                        "warning",
                        f"{self.source}: Serial Notify for session "
                        f"{pdu.session_id}, ours is {self.session_id}; "
                        "querying anyway",
                    )
                )
            events.append(NotifyReceived(pdu.serial))
            same_session = pdu.session_id == self.session_id and self.serial is not None
            if same_session and Serial(pdu.serial) < Serial(self.serial):  # type: ignore[arg-type]
                # RFC 1982: older than what we hold (a delayed notify); nothing to fetch
                events.append(
                    Log(
                        "debug",
                        f"{self.source}: Serial Notify for serial "
                        f"{pdu.serial}, older than ours ({self.serial})",
                    )
                )
                return
            if st is State.ESTABLISHED:
                if not same_session or pdu.serial != self.serial:
                    self._send_query()
            elif st in (State.WAITING, State.RECEIVING):
                self._notify_serial = pdu.serial  # compared with End of Data's serial
            return
        if isinstance(pdu, P.ErrorReport):
            self._on_error_report(pdu, events)
            return
        # Serial Query / Reset Query are router->cache PDUs
        self._fatal(
            P.ErrorCode.INVALID_REQUEST,
            f"{type(pdu).__name__} PDU received by a router",
            raw,
            events,
        )

    def _add_aspa(self, pdu: P.ASPAPDU) -> None:
        assert self._pending is not None
        if self.aspa_compat == "draft10" and pdu.announce:
            # draft-10 sends one PDU per AFI: merge a customer's lists into one record
            for i, (ann, rec) in enumerate(self._pending.aspas):
                if ann and rec.customer == pdu.record.customer:
                    merged = set(rec.providers) | set(pdu.record.providers)
                    if len(merged) > 1:
                        merged.discard(0)
                    self._pending.aspas[i] = (True, ASPARecord(rec.customer, tuple(sorted(merged))))
                    return
        self._pending.aspas.append((pdu.announce, pdu.record))

    def _set_timers(self, eod: P.EndOfData, events: list[Event]) -> None:
        vals = {}
        for name, val, (lo, hi) in (
            ("refresh", eod.refresh, REFRESH_RANGE),
            ("retry", eod.retry, RETRY_RANGE),
            ("expire", eod.expire, (self.min_expire, EXPIRE_RANGE[1])),
        ):
            assert val is not None
            if not lo <= val <= hi:
                clamped = min(max(val, lo), hi)
                events.append(
                    Log(
                        "warning",
                        f"{self.source}: {name} interval {val} s from the "
                        f"cache is outside {lo}..{hi}; using {clamped}",
                    )
                )
                val = clamped
            vals[name] = val
        self.timers = Timers(**vals)

    def _on_error_report(self, err: P.ErrorReport, events: list[Event]) -> None:
        code, text = err.code, err.text
        negotiating = self.state is State.NEGOTIATING
        ver = err.version if negotiating else self.version
        if not P.error_code_valid(code, max(ver, err.version)):
            self._fatal(
                code,
                f"cache sent an Error Report with undefined code {code} ({text!r})",
                b"\x00\x0a",
                events,
                send=False,
            )
            return
        fatal = P.error_is_fatal(code, ver)
        if code == P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION and negotiating:
            fatal = False  # nothing is established yet: nothing to flush (bis §7)
        events.append(ErrorReceived(code, text, fatal))
        msg = f"{self.source}: cache reports {P.error_name(code)} ({code})" + (
            f": {text}" if text else ""
        )
        self._note_error(msg)
        if code == P.ErrorCode.UNSUPPORTED_PROTOCOL_VERSION and negotiating:
            offered = err.version
            if offered < self.version and offered >= self.min_version:
                self._downgrade(
                    offered,
                    f"the cache reported Unsupported Protocol Version and speaks version {offered}",
                    events,
                )
                self.state = State.CLOSED
                events.append(CloseConnection(f"reconnecting at version {offered}", 0.0))
                return
            events.append(
                Log(
                    "error",
                    msg + f"; cannot negotiate (asked {self.version}, cache "
                    f"offers {offered}, min-version {self.min_version})",
                )
            )
            self.state = State.CLOSED
            events.append(CloseConnection(msg, self.timers.retry))
            return
        if code == P.ErrorCode.NO_DATA_AVAILABLE:
            events.append(Log("warning", msg + "; keeping current data until expire, retrying"))
            self.state = State.CLOSED
            self._pending = None
            events.append(CloseConnection(msg, self.timers.retry))
            return
        if code == P.ErrorCode.CACHE_RESTART:
            events.append(Log("warning", msg + "; keeping current data until expire"))
            self.state = State.CLOSED
            self._pending = None
            events.append(CloseConnection(msg, self.timers.retry))
            return
        events.append(Log("error", msg + ("; dropping its data" if fatal else "")))
        self._pending = None
        if fatal:
            self._forget(events, f"cache reported {P.error_name(code)}")
        self.state = State.CLOSED
        retry = DEFAULT_RETRY if code == P.ErrorCode.CACHE_SHUTDOWN else self.timers.retry
        events.append(CloseConnection(msg, retry))
