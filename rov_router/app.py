"""`rov-router run`: wires RTR sources, the router core, ExaBGP (through the bridge) and the
display into one asyncio loop.

Flow (one way): RTR -> VRP store -> revalidation -> RIB / policy -> ExaBGP commands, display.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .app_reload import ConfigReload
from .app_rpki import RPKISide, RPKISource
from .bgp.speaker import (
    BridgeEnd,
    ExaBGP,
    PeerSpec,
    SpeakerSpec,
    exabgp_command,
    exabgp_version,
    local_address_for,
)
from .config import RouterConfig
from .ops.statefile import state_document, write_state_file
from .procs import terminal_gone
from .router import RouterCore, Stopping
from .rpki.store import VRPStore
from .rtr import session as S
from .rtr.client import Applied, RTRManager
from .status import Status, Summary
from .ui.events import EventPrinter

log = logging.getLogger("rov_router.app")


#: routes received between two ``gc.freeze()`` calls during an ingest (see App._on_line)
FREEZE_ROUTES = 20_000


class App(RPKISide, ConfigReload):
    """``rov-router run``: everything wired into one asyncio loop."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        display: str = "plain",
        state_file: Path | None = None,
        duration: float | None = None,
        workdir: Path | None = None,
        out=None,
        filters: dict | None = None,
    ) -> None:
        self.filters = filters or {}
        self._own_workdir = workdir is None
        self.control = None
        self.metrics = None
        self.rtr: RTRManager | None = None
        self._rtr_task: asyncio.Task | None = None
        self.config = config
        self.display_mode = display
        self.state_file = state_file
        self.duration = duration
        self.out = out or sys.stdout
        self.store = VRPStore()
        self.core = RouterCore(config, self.store)
        self.sources: list[RPKISource] = []
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rov-router-"))
        self.bridge: BridgeEnd | None = None
        self.exabgp: ExaBGP | None = None
        self._flush_scheduled = False
        self._freeze_at = FREEZE_ROUTES  # core.stats.announced at the next gc.freeze()
        self._stop = asyncio.Event()
        #: the signal that stopped us (exit status 128 + signal), None for a normal end
        self.stop_signal: int | None = None
        self.final_summary: Summary | None = None
        self.started = time.time()
        self.display = None
        self._hold_task: asyncio.Future | None = None
        self._reload_task: asyncio.Future | None = None
        self._reload_again = False
        #: the read-only view every output reads
        self.status = Status(self.core, self.store, self.sources, started=self.started)
        self.printer = EventPrinter(self.status, display, self.out, on_write=self._schedule_flush)
        self.web_addr: tuple[str, int] | None = None  # --web: serve the web view here
        self.web = None

    # ---- events ------------------------------------------------------------------------------

    def _print(self, obj: dict) -> None:
        self.printer.emit(obj)

    def _on_rtr_event(self, src: RPKISource, ev) -> None:
        if isinstance(ev, Applied):
            try:
                n = self.core.on_vrp_changes(ev.changes)
            except Stopping:
                return
            src.last_update = time.time()
            src.synced = True
            self.status.feed.rpki_applied(src.name, ev.serial, ev.changes)
            # the VRP table just loaded is long-lived: keep it out of every later full GC pass
            # (one pass over millions of objects stalls the loop for a second during ingest)
            gc.freeze()
            self._schedule_flush()
            c = self.store.counts(src.name)
            self._print(
                {
                    "event": "rpki",
                    "source": src.name,
                    "serial": ev.serial,
                    "vrps": c["vrps"],
                    "aspas": c["aspas"],
                    "revalidated": n,
                    "message": f"RPKI {src.name}: serial {ev.serial}, {c['vrps']} VRPs, "
                    f"{c['aspas']} ASPA; {n} routes revalidated",
                }
            )
            self._check_rpki_ready()
        elif isinstance(ev, S.Log) and ev.level in ("warning", "error"):
            self._print(
                {"event": "rpki_log", "source": src.name, "level": ev.level, "message": ev.message}
            )

    def _on_line(self, line: bytes) -> None:
        try:
            self.core.feed_line(line)
        except Stopping:
            return
        self._schedule_flush()
        if self.core.stats.announced >= self._freeze_at:
            self._freeze_at = self.core.stats.announced + FREEZE_ROUTES
            # Routes live until withdrawn and are freed by reference counting, never by the
            # cycle collector.  Left to it, a full table makes Python's full GC pass walk
            # every route ever more often (16 passes of up to 1.3 s each on 577k routes, the
            # loop stalled meanwhile): every 20k routes move what is alive into the permanent
            # generation, so a pass walks at most the last 20k routes.
            gc.freeze()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # used outside the event loop (tests, benchmarks)
                self._flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()
        try:
            cmds = self.core.commands()  # isolates a failing route itself; this is the last net
        except Stopping:
            return
        except Exception:  # a flush must never stop later flushes
            log.exception("building downstream commands failed")
            return
        if cmds and self.bridge is not None:
            for c in cmds:
                self.bridge.send(c)

    # ---- lifecycle -----------------------------------------------------------------------------

    def _speaker_spec(self, sock: Path) -> SpeakerSpec:
        cfg = self.config
        listen = cfg.listen.split()
        peers = []
        for n in cfg.neighbors:
            local = local_address_for(n.address, n.local_address, listen[0])
            peers.append(
                PeerSpec(
                    address=n.address,
                    peer_as=n.asn,
                    local_as=cfg.asn,
                    router_id=cfg.router_id,
                    local_address=local,
                    passive=n.passive,
                    connect=None if n.passive else n.port,
                    description=n.description,  # not the role: a role change keeps the session
                    hold_time=n.hold_time,
                )
            )
        return SpeakerSpec("exabgp", peers, listen=listen, port=cfg.port, socket=sock)

    async def run(self) -> int:
        """The whole life of `rov-router run`: start, wait for a signal or the duration, stop.
        Returns the exit status: 0, 1 (ExaBGP died) or 128 + the signal that stopped us."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        # SIGINT / SIGTERM as Python-level handlers: they run even while the loop is busy in
        # long synchronous work, which then stops at its next slice (RouterCore.stopping)
        previous = {
            sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        loop.add_signal_handler(signal.SIGUSR1, self.write_state)
        loop.add_signal_handler(signal.SIGUSR2, self.confirm_reloads)
        try:
            await self.start()
            waiter = asyncio.ensure_future(self._stop.wait())
            watch = asyncio.ensure_future(self._watch_exabgp())
            done, _ = await asyncio.wait(
                {waiter, watch}, timeout=self.duration, return_when=asyncio.FIRST_COMPLETED
            )
            for t in (waiter, watch):
                t.cancel()
            if self.stop_signal is not None:
                return 128 + self.stop_signal
            return 0 if watch not in done else 1
        finally:
            try:
                await self.shutdown()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                loop.remove_signal_handler(signal.SIGHUP)
                loop.remove_signal_handler(signal.SIGUSR1)
                self.remove_workdir()

    def _on_stop_signal(self, signum: int, _frame=None) -> None:
        self.stop_signal = self.stop_signal or signum
        self.core.stopping = True  # long work in progress ends at its next slice
        with contextlib.suppress(RuntimeError):  # the loop may be closing already
            self._loop.call_soon_threadsafe(self._stop.set)

    def _on_hangup(self) -> None:
        """SIGHUP reloads the configuration, unless our terminal was closed (tmux
        kill-session, ssh gone): then we stop (exit status 129) rather than live on as an
        orphan."""
        if self.hung_up():
            self._on_stop_signal(signal.SIGHUP)
        else:
            self.request_reload()

    @staticmethod
    def hung_up() -> bool:
        """Our controlling terminal was closed (tmux kill-session, ssh gone)."""
        return terminal_gone()

    def remove_workdir(self) -> None:
        """Remove our private /tmp/rov-router-XXXX directory (idempotent; every exit path)."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        """Start RPKI sources, the bridge, ExaBGP and the display (for embedding, e.g. labs)."""
        if self.display_mode == "live" and self.display is None:
            from .ui.live import LiveDisplay

            self.display = LiveDisplay(self.status, on_quit=self.request_stop, **self.filters)
            self.printer.display = self.display
        await self._start_rpki()
        self._start_hold()
        sock = self.config.socket or (self.workdir / "exabgp.sock")
        self.bridge = BridgeEnd(
            sock,
            self._on_line,
            on_connect=lambda up: self._print(
                {
                    "event": "bridge",
                    "connected": up,
                    "message": f"ExaBGP bridge {'connected' if up else 'disconnected'}",
                }
            ),
        )
        await self.bridge.start()
        if self.config.exabgp == "managed":
            self.exabgp = ExaBGP(self._speaker_spec(sock), self.workdir)
            self.exabgp.start()
        self._print(
            {
                "event": "start",
                "exabgp_version": exabgp_version() if self.exabgp else None,
                "message": f"rov-router AS{self.config.asn} "
                f"({self.config.router_id}): {len(self.core.peers)} neighbors, "
                f"{len(self.sources)} RPKI source(s); ExaBGP "
                f"{self._exabgp_text()}"
                f", bridge socket {sock}",
            }
        )
        from .ops.control import ControlServer, default_socket

        # a second router on the same socket is an error that names the --control to use,
        # never a silent move to a path `show` does not know about
        self.control = ControlServer(
            self.status, self.config.control_socket or default_socket(create=True)
        )
        await self.control.start()
        if self.config.metrics is not None:
            from .ops.metrics import start_metrics

            host, port = self.config.metrics
            self.metrics = start_metrics(self.status, host, port)
        self._print(
            {
                "event": "control",
                "socket": str(self.control.path),
                "metrics": f"{self.config.metrics[0]}:{self.config.metrics[1]}"
                if self.config.metrics
                else None,
                "message": f"control socket {self.control.path}"
                + (
                    f", metrics on http://{self.config.metrics[0]}:{self.config.metrics[1]}/metrics"
                    if self.config.metrics
                    else ""
                ),
            }
        )
        if self.web_addr is not None:
            from .web.server import WebServer

            self.web = WebServer(self.status, *self.web_addr)
            url = await self.web.start()
            if self.web.warning:
                self._print({"event": "warning", "message": f"warning: {self.web.warning}"})
            self._print({"event": "web", "url": url, "message": f"web view: {url}"})
        if self.display is not None:
            self.display.start()

    def _exabgp_text(self) -> str:
        if self.exabgp is None or self.exabgp.proc is None:
            return "external"
        return (
            f"{exabgp_version()} ({' '.join(exabgp_command()[:1])} -m exabgp) "
            f"pid {self.exabgp.proc.pid}"
        )

    async def _watch_exabgp(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self.exabgp is not None and not self.exabgp.running:
                self._print({"event": "error", "message": "ExaBGP exited:\n" + self.exabgp.tail()})
                return

    async def shutdown(self) -> None:
        """Stop everything we started.  Each step runs even when an earlier one fails (a
        closed terminal makes every print fail), and the summary is taken first, while the
        routes are still there."""
        if self._hold_task is not None:
            self._hold_task.cancel()
        if self.final_summary is None:
            with contextlib.suppress(Exception):
                self.final_summary = self.status.summary()
        hurry = self.stop_signal is not None  # asked to stop: < 2 s, no waiting for acks
        steps = [
            self._close_web,
            self._close_control,
            self._close_metrics,
            self._close_display,
            lambda: self.bridge.drain(0.2 if hurry else 2.0) if self.bridge else None,
            lambda: self.exabgp.stop(grace=1.0 if hurry else 10.0) if self.exabgp else None,
            self._stop_rtr,
            self._close_sources,
            lambda: self.bridge.close() if self.bridge else None,
            self.write_state,
            self._print_summary,
        ]
        for step in steps:
            try:
                res = step()
                if asyncio.iscoroutine(res):
                    await res
            except Exception as e:  # keep tearing down
                log.warning("shutdown: %s: %s", type(e).__name__, e)
        with contextlib.suppress(Exception):
            self.out.flush()
        self.remove_workdir()

    async def _close_web(self) -> None:
        if self.web is not None:
            web, self.web = self.web, None
            await web.close()

    async def _close_control(self) -> None:
        if self.control is not None:
            control, self.control = self.control, None
            await control.close()

    def _close_metrics(self) -> None:
        if self.metrics is not None:
            server = self.metrics[0] if isinstance(self.metrics, tuple) else None
            self.metrics = None
            if server is not None:
                server.shutdown()

    def _close_display(self) -> None:
        if self.display is not None:
            display, self.display = self.display, None
            self.printer.display = None
            display.stop()

    async def _stop_rtr(self) -> None:
        if self.rtr is not None:
            self.rtr.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._rtr_task), 1.0)

    async def _close_sources(self) -> None:
        for src in self.sources:
            await self._close_source(src)

    def _print_summary(self) -> None:
        s = self.final_summary or self.status.summary()
        self._print({"event": "summary", **s.to_json(), "message": s.text()})

    # ---- state -------------------------------------------------------------------------------

    def state(self) -> dict:
        """The state file's document (also for benchmarks and tests)."""
        return state_document(self.status)

    def write_state(self) -> None:
        if self.state_file is not None:
            write_state_file(self.state_file, self.status)
