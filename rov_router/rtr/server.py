"""asyncio RTR cache server: any number of routers at once, Serial Notify on changes (rate
limited, bis §8.2), stalled or half-talking routers dropped without affecting the others, and
a front end that serves a VRP file (+ SLURM), reloading it when it changes or on SIGHUP.

Length (~570 lines): the file front end (:class:`FileSource`, :class:`FileCache`) is due to
move to its own module; it stays here while the reload path is being optimised in place.
The per-router protocol logic is in :mod:`rov_router.rtr.cache_session`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..gcpause import gc_paused
from ..rpki.slurm import Slurm, load_slurm
from ..rpki.vrp import LoadProgress, VRPFileError, VRPSet, load_vrp_file
from .cache import MAX_VERSION, CacheState, new_session_id
from .cache_session import DRAIN_TIMEOUT, PARTIAL_TIMEOUT, ServerEvent, ServerSession
from .transport.listen import start_listener
from .transport.options import SSHServerOptions, TLSServerOptions

log = logging.getLogger("rov_router.cache")

#: a response is handed to the transport in chunks of this size (never the whole body: on
#: Python 3.11 a transport copies what it cannot send at once, so a router that does not read
#: would hold a private copy of a full response)
WRITE_CHUNK = 8 << 10
#: transport write buffer above which a router counts as not reading: its response stops
#: being written and its input is no longer read until the buffer has drained (back-pressure)
WRITE_HIGH_WATER = 8 << 10


class _Conn(asyncio.Protocol):
    """One router's connection: at most one response in flight, written chunk by chunk from
    the shared encoded body while the transport drains."""

    def __init__(self, server: RTRServer, via: str = "") -> None:
        self.server = server
        self.via = via  # "" for TCP, else how the router came in (TLS, SSH as USER)
        self.transport: asyncio.Transport | None = None  # or an SSH channel adapter
        self.session: ServerSession | None = None
        self.write_paused = False
        self.peer = "?"
        self._queue: deque[memoryview] = deque()  # views of shared response bodies
        self.queued = 0  # bytes in _queue
        self._reading = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        srv = self.server
        self.session = ServerSession(
            srv.cache,
            self.peer,
            max_version=srv.max_version,
            clock=srv.clock,
            drain_timeout=srv.drain_timeout,
            partial_timeout=srv.partial_timeout,
        )
        transport.set_write_buffer_limits(high=self.server.write_high_water, low=0)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.server._conns.add(self)
        via = f" over {self.via}" if self.via else ""
        self.server._event(ServerEvent("connect", f"{self.peer}: connected{via}"))

    def data_received(self, data: bytes) -> None:
        assert self.session is not None
        events = self.session.receive_data(data)
        self.flush(events)

    @property
    def in_flight(self) -> bool:
        """A response is not yet out of our hands or the transport's buffer is high."""
        return bool(self._queue) or self.write_paused

    def flush(self, events: list[ServerEvent] | None = None) -> None:
        """Write what the session has to send; answer queries that waited behind a response
        once nothing is in flight; read from the router only while nothing is."""
        events = events if events is not None else []
        t = self.transport
        s = self.session
        if t is not None and s is not None and not t.is_closing():
            while True:
                for chunk in s.data_to_send():
                    if chunk:
                        self._queue.append(memoryview(chunk))
                        self.queued += len(chunk)
                self._pump()
                if self.in_flight or s.closed or not s.holding or t.is_closing():
                    break
                events.extend(s.resume())
            if s.closed and not self._queue:
                t.close()  # after the buffered bytes (e.g. the Error Report) are written
            elif not t.is_closing():
                self._set_reading(not self.in_flight)
        for ev in events:
            self.server._event(ev)

    def _pump(self) -> None:
        t = self.transport
        q = self._queue
        assert t is not None
        while q and not self.write_paused and not t.is_closing():
            mv = q[0]
            n = min(len(mv), WRITE_CHUNK)
            t.write(mv[:n])  # may call pause_writing() at once
            if n == len(mv):
                q.popleft()
            else:
                q[0] = mv[n:]
            self.queued -= n

    def _set_reading(self, on: bool) -> None:
        t = self.transport
        if t is None or on == self._reading:
            return
        self._reading = on
        with contextlib.suppress(RuntimeError, AttributeError):
            if on:
                t.resume_reading()
            else:
                t.pause_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.session is not None:
            self.session.write_blocked()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.session is not None:
            self.session.write_drained()
        self.flush()

    def tick(self, now: float) -> None:
        """Run the session's timers (stalled writer, half-sent PDU) and act on them."""
        s = self.session
        if s is None:
            return
        for ev in s.tick(now):
            if ev.kind == "drop":
                backlog = self.queued + (
                    self.transport.get_write_buffer_size() if self.transport else 0
                )
                self.abort(f"{ev.message} ({backlog} bytes of a response left to send): dropped")
            else:
                self.flush([ev])

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._conns.discard(self)
        self._queue.clear()
        self.queued = 0
        self.server._event(
            ServerEvent("disconnect", f"{self.peer}: disconnected" + (f" ({exc})" if exc else ""))
        )

    def abort(self, reason: str) -> None:
        self.server._event(ServerEvent("close", f"{self.peer}: {reason}", "warning"))
        self._queue.clear()
        self.queued = 0
        if self.transport is not None:
            self.transport.abort()


class RTRServer:
    """Serves one :class:`CacheState` over TCP, and over TLS and/or SSH when ``tls`` /
    ``ssh`` say where (RFC 8210 §9)."""

    def __init__(
        self,
        cache: CacheState,
        host: str = "127.0.0.1",
        port: int = 3323,
        *,
        max_version: int = MAX_VERSION,
        notify_interval: float = 60.0,
        drain_timeout: float = DRAIN_TIMEOUT,
        stall_timeout: float | None = None,
        partial_timeout: float = PARTIAL_TIMEOUT,
        write_high_water: int = WRITE_HIGH_WATER,
        on_event: Callable[[ServerEvent], None] | None = None,
        tls: TLSServerOptions | None = None,
        ssh: SSHServerOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        #: monotonic seconds: Serial Notify spacing, the routers' timers, connection ages
        self.clock = clock
        self.host = host
        self.port = port
        self.max_version = max_version
        self.notify_interval = notify_interval
        #: a router whose write buffer has not drained for this long is dropped (bis §9 allows
        #: up to 3x Retry; a router that does not read must not hold memory that long)
        self.drain_timeout = drain_timeout if stall_timeout is None else stall_timeout
        self.partial_timeout = partial_timeout
        self.write_high_water = write_high_water
        self.on_event = on_event
        self._server: asyncio.AbstractServer | None = None
        self.tls, self.ssh = tls, ssh
        self._listeners: list = []  # TLS / SSH listeners (rov_router.rtr.transport)
        self._conns: set[_Conn] = set()
        self._last_notify = 0.0
        self._notify_handle: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.Task | None = None
        cache.listeners.append(self._on_serial)

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Conn(self), self.host, self.port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        if self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._watch())
        self._event(
            ServerEvent(
                "log",
                f"serving RTR v0-v{self.max_version} on "
                f"{self.host}:{self.port} (session {self.cache.session_id})",
            )
        )
        for opts in (self.tls, self.ssh):
            if opts is None or any(lst.opts is opts for lst in self._listeners):
                continue
            lst = await start_listener(
                opts,
                lambda via: _Conn(self, via),
                lambda kind, msg, level: self._event(ServerEvent(kind, msg, level)),
            )
            self._listeners.append(lst)
            opts.port = lst.port  # the one bound when 0 was asked for
            how = (
                f"client certificates from {opts.client_ca}"
                if isinstance(opts, TLSServerOptions)
                else "subsystem rpki-rtr"
            )
            self._event(
                ServerEvent("log", f"serving RTR over {lst.kind} on {lst.host}:{lst.port} ({how})")
            )

    async def stop(self, code: int | None = None, text: str = "") -> None:
        """Stop listening and drop every router (first sending Error Report ``code``, e.g.
        12 Cache Restart or 13 Cache Shutdown, where the session's version defines it)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for lst in self._listeners:
            await lst.close()  # stop accepting; the routers connected are dropped below
        for c in list(self._conns):
            if code is not None and c.session is not None:
                c.session.error_and_close(code, text)
                c.flush()
            elif c.transport is not None:
                c.transport.close()
        for _ in range(50):
            if not self._conns:
                break
            await asyncio.sleep(0.02)
        for c in list(self._conns):
            c.abort("still open at stop")
        for lst in self._listeners:
            lst.drop_all()  # e.g. SSH connections still authenticating
        self._listeners = []

    async def close(self) -> None:
        await self.stop()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._notify_handle is not None:
            self._notify_handle.cancel()
        with contextlib.suppress(ValueError):
            self.cache.listeners.remove(self._on_serial)

    @property
    def serving(self) -> bool:
        return self._server is not None

    # ---- notify ------------------------------------------------------------------------

    def _on_serial(self, serial: int) -> None:
        now = self.clock()
        wait = self._last_notify + self.notify_interval - now
        if wait <= 0:
            self._notify_all()
        elif self._notify_handle is None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing connected
                self._notify_handle = asyncio.get_running_loop().call_later(wait, self._notify_all)

    def _notify_all(self) -> None:
        self._notify_handle = None
        self._last_notify = self.clock()
        n = 0
        for c in list(self._conns):
            if c.session is not None and c.session.notify():
                c.flush()
                n += 1
        if n:
            self._event(
                ServerEvent(
                    "log", f"Serial Notify (serial {self.cache.serial}) sent to {n} router(s)"
                )
            )

    # ---- watchdog: stalled and half-talking routers ------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.partial_timeout, self.drain_timeout))
            now = self.clock()
            for c in list(self._conns):
                c.tick(now)

    # ---- status ------------------------------------------------------------------------

    def status(self) -> dict:
        c = self.cache
        now = self.clock()
        routers = []
        for conn in sorted(self._conns, key=lambda x: x.peer):
            s = conn.session
            if s is None:
                continue
            routers.append(
                {
                    "peer": conn.peer,
                    "version": s.version,
                    "serial": s.serial_served,
                    "up_to_date": s.serial_served == c.serial,
                    "connected_s": round(now - s.connected_at, 1),
                    "queries": s.queries,
                    "resets_served": s.resets_served,
                    "deltas_served": s.deltas_served,
                    "write_queue": conn.queued
                    + (conn.transport.get_write_buffer_size() if conn.transport else 0),
                }
            )
        v4 = sum(1 for v in c.vrps if len(v.addr) == 4)
        return {
            "listen": f"{self.host}:{self.port}",
            "serving": self.serving,
            "session_id": c.session_id,
            "serial": c.serial,
            "oldest_serial": c.oldest_serial(),
            "vrps": len(c.vrps),
            "vrps_v4": v4,
            "vrps_v6": len(c.vrps) - v4,
            "router_keys": len(c.router_keys),
            "aspas": len(c.aspas),
            "refresh": c.refresh,
            "retry": c.retry,
            "expire": c.expire,
            "routers": routers,
        }

    def _event(self, ev: ServerEvent) -> None:
        if self.on_event is not None:
            self.on_event(ev)
        else:
            log.log(logging.WARNING if ev.level == "warning" else logging.INFO, "%s", ev.message)


# ---- serving files -----------------------------------------------------------------------------


@dataclass
class FileSource:
    """A VRP file (and optional SLURM file) with change detection."""

    vrps: Path
    slurm: Path | None = None
    fmt: str = "auto"
    ignore_expires: bool = False
    #: told how far loading the VRP file has come (``load_vrp_file``'s ``progress``)
    progress: LoadProgress | None = None
    keep_ta: bool = False  # remember the trust anchors (for an export)

    def __post_init__(self) -> None:
        self._sig: tuple | None = None

    def signature(self) -> tuple:
        sig = []
        for p in (self.vrps, self.slurm):
            if p is None:
                continue
            try:
                st = p.stat()
                sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                sig.append(None)
        return tuple(sig)

    def changed(self) -> bool:
        return self.signature() != self._sig

    def load(self) -> VRPSet:
        """Read both files; raises VRPFileError naming file, entry and reason."""
        # remember what we tried, good or bad: a broken file is retried once it changes again
        self._sig = self.signature()
        data = load_vrp_file(
            self.vrps,
            fmt=self.fmt,
            ignore_expires=self.ignore_expires,
            progress=self.progress,
            keep_ta=self.keep_ta,
        )
        if self.progress is not None:
            self.progress("building", 0, None)
        if self.slurm is not None:
            slurm: Slurm = load_slurm(self.slurm)
            data = slurm.apply(data)
        return data


def session_state_file(host: str, port: int) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "rov-router" / f"cache-session-{host.replace(':', '_')}-{port}"


def pick_session_id(state_file: Path | None) -> int:
    """A random session ID that differs from the one the previous run used (kept in
    ``state_file``), so a restarted cache never reuses its predecessor's ID."""
    prev = None
    if state_file is not None:
        with contextlib.suppress(OSError, ValueError):
            prev = int(state_file.read_text().strip())
    sid = new_session_id(avoid=prev)
    if state_file is not None:
        with contextlib.suppress(OSError):
            state_file.parent.mkdir(parents=True, exist_ok=True)
            state_file.write_text(f"{sid}\n")
    return sid


class FileCache:
    """A :class:`CacheState` fed from a :class:`FileSource`: reload on change (polled) or on
    :meth:`reload`; a file that fails to load is reported and the last good set stays served.

    Fail safe: a changed file is read only once its size and mtime have stayed the same for
    ``settle`` seconds (never half a file); an empty file is refused (see
    :func:`~rov_router.rpki.vrp.load_vrp_file`); a reload that would withdraw more than
    ``max_shrink`` (a fraction) of the VRPs served is held back until the file changes again
    or :meth:`confirm` applies it."""

    def __init__(
        self,
        cache: CacheState,
        source: FileSource,
        *,
        poll: float = 1.0,
        settle: float = 0.5,
        max_shrink: float = 0.5,
        on_reload: Callable[[str, str], None] | None = None,
        on_apply: Callable[[VRPSet], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= max_shrink <= 1.0:
            raise ValueError(f"max_shrink {max_shrink} outside 0..1")
        self.cache = cache
        self.source = source
        self.poll = poll
        self.settle = settle
        self.max_shrink = max_shrink
        self.on_reload = on_reload
        self.on_apply = on_apply  # called with each set that is served from now on
        self.clock = clock
        self.last_error: str | None = None
        #: a loaded set held back by the shrink guard (applied by :meth:`confirm`)
        self.held: VRPSet | None = None
        self._settling: tuple[tuple, float] | None = None  # (signature seen, since when)
        self._task: asyncio.Task | None = None

    def _settled(self) -> bool:
        """The file changed and has stayed the same for ``settle`` seconds."""
        sig = self.source.signature()
        if sig == self.source._sig:
            self._settling = None
            return False
        now = self.clock()
        if self._settling is None or self._settling[0] != sig:
            self._settling = (sig, now)
            return self.settle <= 0
        return now - self._settling[1] >= self.settle

    def reload(self, *, force: bool = False) -> bool:
        """Load the file(s) if changed and settled (or ``force``).  True when the served set
        changed."""
        if not force and not self._settled():
            return False
        self._settling = None
        # the collector stays off while the new set is read and compared, and everything
        # served afterwards is frozen out of later full passes (see rov_router.gcpause)
        with gc_paused(freeze=True):
            return self._reload()

    def _reload(self) -> bool:
        try:
            data = self.source.load()
        except VRPFileError as e:
            self.last_error = str(e)
            self._report("error", f"{e}; still serving serial {self.cache.serial}")
            return False
        self.last_error = None
        self.held = None
        served = len(self.cache.vrps)
        gone: frozenset | None = None
        if self.cache.has_data and served:
            gone = self.cache.vrps - data.vrps
            removed = len(gone)
            if removed > self.max_shrink * served:
                self.held = data
                self._report(
                    "error",
                    f"{self.source.vrps}: reload HELD BACK: it would withdraw {removed} of the "
                    f"{served} VRPs served ({100.0 * removed / served:.0f} % > max-shrink "
                    f"{100.0 * self.max_shrink:.0f} %); still serving serial {self.cache.serial}. "
                    "Fix the file, or confirm this reload with SIGUSR2",
                )
                return False
        return self._apply(data, gone)

    def confirm(self) -> bool:
        """Apply the reload held back by the shrink guard (the operator's SIGUSR2)."""
        data = self.held
        if data is None:
            self._report("info", f"{self.source.vrps}: no held-back reload to confirm")
            return False
        self.held = None
        self._report(
            "warning",
            f"{self.source.vrps}: held-back reload confirmed by the operator "
            f"({len(data.vrps)} VRPs)",
        )
        with gc_paused(freeze=True):
            return self._apply(data)

    def _apply(self, data: VRPSet, gone: frozenset | None = None) -> bool:
        first = not self.cache.has_data
        delta = self.cache.set_data(data.vrps, data.aspas, data.router_keys, vrps_removed=gone)
        if self.on_apply is not None and (first or delta is not None):
            self.on_apply(data)
        if first:
            self._report("info", f"loaded {data.summary()}; serial {self.cache.serial}")
            return True
        if delta is None:
            self._report(
                "info", f"reloaded {self.source.vrps}: no change (serial {self.cache.serial})"
            )
            return False
        self._report(
            "info",
            f"reloaded {self.source.vrps}: +{len(delta.vrps_added)} "
            f"-{len(delta.vrps_removed)} VRPs, {len(delta.aspas)} ASPA and "
            f"{len(delta.keys_added) + len(delta.keys_removed)} router key "
            f"changes; serial {delta.from_serial} -> {delta.to_serial}",
        )
        return True

    def _report(self, level: str, msg: str) -> None:
        if self.on_reload is not None:
            self.on_reload(level, msg)
        else:
            log.log(logging.getLevelName(level.upper()), "%s", msg)

    def start_watching(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            settling = self._settling is not None and self.settle > 0
            await asyncio.sleep(min(self.poll, self.settle) if settling else self.poll)
            self.reload()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
