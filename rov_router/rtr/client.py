"""asyncio drivers for the sans-IO RTR session: TCP transport, reconnect with backoff, several
caches feeding one store, and replay of a recorded dump through the same state machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..rpki.payload import Changes, PayloadTarget, UpdateError
from . import session as S
from .dump import MAGIC, RECORD_HEADER, DumpWriter, read_dump
from .transport.connect import open_connection
from .transport.options import TransportOptions

log = logging.getLogger("rov_router.rtr")


#: during a transfer, a read smaller than this pauses reading for COALESCE_DELAY seconds
COALESCE_BELOW = 32 << 10
COALESCE_DELAY = 0.01


@dataclass
class Applied(S.Event):
    """The store changed (an update applied, or a flush)."""

    changes: Changes
    serial: int | None
    reset: bool


def pump(
    session: S.ClientSession, store: PayloadTarget, events: list[S.Event]
) -> tuple[list[S.Event], S.CloseConnection | None]:
    """Act on session events against the store: apply updates at End of Data, flush on fatal
    errors or expiry.  Returns every event (with :class:`Applied` ones added) and the
    :class:`CloseConnection` request, if any."""
    out: list[S.Event] = []
    close: S.CloseConnection | None = None
    queue = list(events)
    while queue:
        ev = queue.pop(0)
        out.append(ev)
        if isinstance(ev, S.UpdateReady):
            try:
                changes = store.apply(ev.update)
            except UpdateError as e:
                queue[:0] = session.update_done(e)
                continue
            out.append(Applied(changes, ev.serial, ev.update.reset))
            queue[:0] = session.update_done()
        elif isinstance(ev, S.FlushRequired):
            changes = store.flush(session.source)
            out.append(Applied(changes, None, True))
        elif isinstance(ev, S.CloseConnection) and close is None:
            close = ev
    return out, close


def _log_event(source: str, ev: S.Event) -> None:
    if isinstance(ev, S.Log):
        getattr(log, ev.level if ev.level != "warning" else "warning")(ev.message)
    elif isinstance(ev, S.Synced):
        log.info(
            "%s: %s complete: serial %d, session %d, version %d, %d records",
            source,
            "reset" if ev.reset else "update",
            ev.serial,
            ev.session_id,
            ev.version,
            ev.records,
        )


class RTRClient:
    """Keeps one cache's data in ``store`` up to date over TCP (or TLS / SSH: ``transport``),
    reconnecting with backoff.

    ``on_event`` is called with every session event (including :class:`Applied`), from the
    event loop.  ``dump`` records the raw byte stream.
    """

    def __init__(
        self,
        host: str,
        port: int,
        store: PayloadTarget,
        *,
        source: str | None = None,
        on_event: Callable[[S.Event], None] | None = None,
        dump: str | Path | None = None,
        connect_timeout: float = 10.0,
        max_backoff: float | None = None,
        transport: TransportOptions | None = None,
        **session_kw,
    ) -> None:
        self.host = host
        self.port = port
        self.store = store
        self.source = source or f"{host}:{port}"
        self.session = S.ClientSession(self.source, **session_kw)
        self.on_event = on_event
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.transport_options = transport or TransportOptions()
        self._dump = DumpWriter(dump) if dump else None
        self._stop = asyncio.Event()
        self._synced = asyncio.Event()
        #: cleared by a cache group while a more preferred cache serves (RFC 8210 §10)
        self.enabled = True
        self._interrupt = asyncio.Event()
        self.preference = 1
        self.connected = False
        self._close: S.CloseConnection | None = None
        self._transport: asyncio.Transport | None = None  # or an SSH channel adapter
        self._timer: asyncio.TimerHandle | None = None
        self.connects = 0
        self.last_error: str | None = None

    # events ------------------------------------------------------------------------------------

    def _emit(self, events: list[S.Event]) -> S.CloseConnection | None:
        evs, close = pump(self.session, self.store, events)
        for ev in evs:
            _log_event(self.source, ev)
            if isinstance(ev, S.Synced):
                self._synced.set()
            if self.on_event is not None:
                self.on_event(ev)
        return close

    def stop(self) -> None:
        self._stop.set()

    def set_enabled(self, enabled: bool) -> None:
        """Enable or pause this cache.  A paused cache closes its connection and does not
        reconnect, but keeps its data, which still expires on its own timer."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if not enabled:
            self._interrupt.set()
        log.info("%s: %s", self.source, "enabled" if enabled else "standing by")

    @property
    def healthy(self) -> bool:
        """Connected and in sync (at least one End of Data on this connection)."""
        return self.connected and self.session.state is S.State.ESTABLISHED

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    # main loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, sync, follow updates; reconnect after failures until :meth:`stop`."""
        failures = 0
        try:
            while not self._stop.is_set():
                while not self.enabled and not self._stop.is_set():
                    await self._idle(0.2)  # standing by: timers (expire) still run
                if self._stop.is_set():
                    break
                self._interrupt.clear()
                delay = await self._one_connection()
                if self._stop.is_set():
                    break
                if not self.enabled:
                    continue
                if delay is None:
                    failures += 1
                    delay = min(2.0 ** min(failures, 10), self._backoff_cap())
                else:
                    failures = 0 if delay == 0 else failures
                await self._idle(delay)
        finally:
            if self._dump:
                self._dump.close()

    def _backoff_cap(self) -> float:
        cap = self.session.retry_delay()
        if self.max_backoff is not None:
            cap = min(cap, self.max_backoff)
        return cap

    async def _idle(self, delay: float) -> None:
        """Sleep ``delay`` seconds while still running timers (expire must fire when offline)."""
        end = time.monotonic() + delay
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= end:
                return
            dl = self.session.next_deadline()
            wake = end if dl is None else min(end, now + max(0.0, dl - self.session.clock()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, wake - now))
            self._emit(self.session.tick())

    async def _one_connection(self) -> float | None:
        """One transport connection.  Returns the delay before reconnecting (None: backoff)."""
        proto = _Protocol(self)
        opts = self.transport_options
        via = "" if opts.transport == "tcp" else f" over {opts.describe()}"
        try:
            transport = await asyncio.wait_for(
                open_connection(opts, self.host, self.port, lambda: proto),
                self.connect_timeout,
            )
        except (TimeoutError, OSError) as e:
            self.last_error = f"connect to {self.host}:{self.port}{via} failed: {e or 'timeout'}"
            log.warning("%s: %s", self.source, self.last_error)
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # bis §9: SHOULD
        self.connected = True
        self.connects += 1
        self._close = None
        self._transport = transport
        self._record(b"C")
        self._handle(self.session.connection_made())
        stop = asyncio.ensure_future(self._stop.wait())
        interrupt = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait({proto.lost, stop, interrupt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            interrupt.cancel()
            self._cancel_timer()
            self.connected = False
            self._transport = None
            if not transport.is_closing():
                transport.close()
            if not proto.lost.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proto.lost), 2.0)
            self._record(b"D")
            self._emit(self.session.connection_lost())
        close = self._close
        if close is not None:
            self.last_error = close.reason
            return close.reconnect_after
        if proto.lost.done() and not self._stop.is_set():
            exc = proto.lost.result()
            self.last_error = f"connection lost: {exc}" if exc else "connection closed by the cache"
            log.warning("%s: %s", self.source, self.last_error)
        return None

    # called from the protocol / timers, inside the event loop ---------------------------------

    def _handle(self, events: list[S.Event]) -> None:
        close = self._emit(events)
        out = self.session.data_to_send()
        t = self._transport
        if out and t is not None and not t.is_closing():
            self._record(b">", out)
            t.write(out)
        if close is not None and self._close is None:
            self._close = close
            if t is not None:
                t.close()
            return
        self._schedule_timer()

    def _on_data(self, data: bytes) -> None:
        self._record(b"<", data)
        self._handle(self.session.receive_data(data))
        t = self._transport
        if (
            len(data) < COALESCE_BELOW
            and self.session.state is S.State.RECEIVING
            and t is not None
            and not t.is_closing()
        ):
            # A cache that writes PDU by PDU (StayRTR) wakes us for every few hundred bytes;
            # let the kernel gather a bigger chunk before the next read.
            t.pause_reading()
            asyncio.get_running_loop().call_later(COALESCE_DELAY, self._resume_reading)

    def _resume_reading(self) -> None:
        t = self._transport
        if t is not None and not t.is_closing():
            with contextlib.suppress(RuntimeError):
                t.resume_reading()

    def _schedule_timer(self) -> None:
        self._cancel_timer()
        dl = self.session.next_deadline()
        if dl is not None and self._transport is not None:
            delay = max(0.0, dl - self.session.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._handle(self.session.tick())

    def _record(self, kind: bytes, data: bytes = b"") -> None:
        if self._dump:
            self._dump.record(kind, time.time(), data)
            self._dump.flush()


class _Protocol(asyncio.Protocol):
    def __init__(self, client: RTRClient) -> None:
        self.client = client
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.client._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class RTRManager:
    """Several caches feeding one store, by preference (RFC 8210 §10): the most preferred
    caches (lowest ``preference``) that are reachable serve; less preferred ones stand by and
    take over when every more preferred cache is lost, then stand by again once a more
    preferred one is back in sync.  Each cache's data is kept apart and dropped only at its own
    Expire, and validation uses the union, so a switch leaves no window without VRPs."""

    def __init__(
        self,
        store: PayloadTarget,
        clients: list[RTRClient],
        *,
        on_switch: Callable[[RTRClient, bool], None] | None = None,
        grace: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        #: monotonic seconds, for the ``grace`` a level gets before the next one takes over
        self.clock = clock
        self.clients = clients
        self.on_switch = on_switch
        self.grace = grace
        self._down_since: dict[int, float] = {}
        self._tasks: dict[int, asyncio.Future] = {}
        self._stop = asyncio.Event()
        if len({c.preference for c in clients}) > 1:
            self.arbitrate()  # before anything connects: only the most preferred level starts

    def arbitrate(self) -> None:
        """Enable the most preferred level; enable the next level only after every more
        preferred cache has been out of sync for ``grace`` seconds (a start-up included), and
        stand it by again as soon as a more preferred cache is in sync."""
        now = self.clock()
        levels = sorted({c.preference for c in self.clients})
        usable_above = False  # a more preferred level is in sync, or not yet given up on
        for level in levels:
            group = [c for c in self.clients if c.preference == level]
            want = not usable_above
            for c in group:
                if c.enabled != want:
                    c.set_enabled(want)
                    if self.on_switch is not None:
                        self.on_switch(c, want)
            healthy = any(c.healthy for c in group)
            if healthy or not want:
                self._down_since.pop(level, None)
            else:
                self._down_since.setdefault(level, now)
            if healthy or (want and now - self._down_since.get(level, now) < self.grace):
                usable_above = True

    async def run(self) -> None:
        self._tasks = {id(c): asyncio.ensure_future(c.run()) for c in self.clients}
        try:
            while not self._stop.is_set():
                self.arbitrate()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.2)
        finally:
            for c in self.clients:
                c.stop()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def add(self, client: RTRClient) -> None:
        """A cache added at run time (configuration reload); it starts at once."""
        self.clients.append(client)
        self._tasks[id(client)] = asyncio.ensure_future(client.run())
        self.arbitrate()

    async def remove(self, client: RTRClient) -> None:
        """A cache removed at run time: stopped; its data is the caller's to drop."""
        client.stop()
        self.clients.remove(client)
        task = self._tasks.pop(id(client), None)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        self.arbitrate()

    def stop(self) -> None:
        self._stop.set()
        for c in self.clients:
            c.stop()


@dataclass
class ReplayResult:
    events: list[S.Event]
    connections: int
    sent_mismatches: int


def replay(
    path: str | Path,
    store: PayloadTarget,
    *,
    source: str = "replay",
    on_event: Callable[[S.ClientSession, S.Event], None] | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    **session_kw,
) -> ReplayResult:
    """Feed a dump through a fresh session with the recorded times as its clock.

    What the session would send is compared with what was recorded (``sent_mismatches``).
    ``progress(bytes_done, dump_size, records)`` follows the replay (``records``: of the
    transfer running, 0 between transfers).
    """
    now = [0.0]
    sess = S.ClientSession(source, clock=lambda: now[0], **session_kw)
    all_events: list[S.Event] = []
    expected = bytearray()
    produced = bytearray()
    conns = 0

    def run(events: list[S.Event]) -> None:
        evs, _ = pump(sess, store, events)
        produced.extend(sess.data_to_send())
        for ev in evs:
            all_events.append(ev)
            if on_event:
                on_event(sess, ev)

    size = 0
    if progress is not None:
        with contextlib.suppress(OSError):  # read_dump says what is wrong with the file
            size = Path(path).stat().st_size
    done = len(MAGIC)
    for kind, t, data in read_dump(path):
        if progress is not None:
            done += RECORD_HEADER + len(data)
            progress(done, size, sess.pending_records)
        now[0] = t
        run(sess.tick())
        if kind == b"C":
            conns += 1
            run(sess.connection_made())
        elif kind == b"<":
            run(sess.receive_data(data))
        elif kind == b">":
            expected.extend(data)
        elif kind == b"D":
            run(sess.connection_lost())
    return ReplayResult(all_events, conns, 0 if bytes(expected) == bytes(produced) else 1)
