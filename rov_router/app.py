"""`rov-router run`: wires RTR sources, the router core, ExaBGP (through the bridge) and the
display into one asyncio loop.

Flow (one way): RTR -> VRP store -> revalidation -> RIB / policy -> ExaBGP commands, display.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from ipaddress import ip_address
from pathlib import Path

from .bgp.speaker import (
    BridgeEnd,
    ExaBGP,
    PeerSpec,
    SpeakerSpec,
    exabgp_command,
    exabgp_version,
    local_address_for,
)
from .config import ConfigError, RouterConfig, RPKISourceConfig, load_config
from .ops.statefile import state_document, write_state_file
from .procs import terminal_gone
from .router import RouterCore, Stopping
from .rpki.store import VRPStore
from .rtr import session as S
from .rtr.cache import CacheState
from .rtr.client import Applied, RTRClient, RTRManager
from .rtr.server import FileCache, FileSource, RTRServer
from .status import Status, Summary
from .ui.events import EventPrinter

log = logging.getLogger("rov_router.app")


def ip_key(address: str) -> str:
    return str(ip_address(address))


#: test hook (ROV_ROUTER_DEBUG_STALL=SECONDS): the first UPDATE blocks the loop that long, to
#: show that the bridge keeps reading ExaBGP while rov-router is busy
_DEBUG_STALL = float(os.environ.get("ROV_ROUTER_DEBUG_STALL", "0") or 0)


class RPKISource:
    """One configured RPKI source: an RTR client, plus the embedded cache when it serves a file."""

    def __init__(
        self,
        name: str,
        client: RTRClient,
        cache: CacheState | None = None,
        server: RTRServer | None = None,
        files: FileCache | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.cache = cache
        self.server = server
        self.files = files
        self.last_update: float | None = None
        self.synced = False  # has had one complete update (End of Data) since start
        self.config: RPKISourceConfig | None = None

    @property
    def preference(self) -> int:
        return self.client.preference


class App:
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
        if _DEBUG_STALL and line.startswith(b"{") and b'"update"' in line:
            # test hook: block the event loop once, as a very slow redraw would
            globals()["_DEBUG_STALL"] = 0.0
            time.sleep(float(os.environ.get("ROV_ROUTER_DEBUG_STALL", "0")))

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

    async def _start_rpki(self) -> None:
        for i, src in enumerate(self.config.rpki):
            self.sources.append(await self._make_source(src.name or f"rpki{i}", src))
        self.rtr = RTRManager(
            self.store, [s.client for s in self.sources], on_switch=self._on_switch
        )
        self._rtr_task = asyncio.ensure_future(self.rtr.run())

    async def _make_source(self, name: str, src: RPKISourceConfig) -> RPKISource:
        """One configured RPKI source: its RTR client (not started), and for a VRP file the
        embedded cache serving it."""
        if src.vrps is not None:
            cache = CacheState(refresh=src.refresh, retry=src.retry, expire=src.expire)
            files = FileCache(
                cache,
                FileSource(src.vrps, src.slurm, "auto", src.ignore_expires),
                poll=0.5,
                max_shrink=src.max_shrink,
                on_reload=lambda lvl, msg, n=name: self._print(
                    {"event": "cache", "source": n, "level": lvl, "message": msg}
                ),
            )
            files.reload(force=True)
            if not cache.has_data:
                raise RuntimeError(f"RPKI source {name}: {files.last_error}")
            server = RTRServer(cache, "127.0.0.1", 0, notify_interval=1.0, on_event=lambda ev: None)
            await server.start()
            files.start_watching()
            host, port = "127.0.0.1", server.port
        else:
            assert src.cache is not None
            cache = server = files = None
            host, port = src.cache
        holder: list[RPKISource] = []
        client = RTRClient(
            host,
            port,
            self.store,
            source=name,
            max_version=src.version,
            min_version=src.min_version,
            min_expire=src.min_expire,
            max_records=src.max_records,
            max_backoff=5.0,
            on_event=lambda ev, h=holder: self._on_rtr_event(h[0], ev),
            transport=src.transport_options() if src.cache is not None else None,
        )
        client.preference = src.preference
        rs = RPKISource(name, client, cache, server, files)
        rs.config = src
        holder.append(rs)
        return rs

    async def _close_source(self, src: RPKISource) -> None:
        if src.files is not None:
            await src.files.stop()
        if src.server is not None:
            await src.server.close()

    # ---- start-up hold: no route leaves before RPKI has synced once ---------------------------

    def _start_hold(self) -> None:
        if not self.config.rpki or self.config.rpki_wait <= 0:
            return
        self.core.hold()
        self._hold_task = asyncio.ensure_future(self._hold_timeout(self.config.rpki_wait))
        self._print(
            {
                "event": "rpki_wait",
                "seconds": self.config.rpki_wait,
                "message": f"routes are held (waiting for RPKI) until every RPKI source has "
                f"synced once, at most {self.config.rpki_wait} s",
            }
        )

    def _rpki_ready(self) -> bool:
        """Every source has synced once, or stands by because a more preferred one is in sync."""
        return all(s.synced or not s.client.enabled for s in self.sources) and any(
            s.synced for s in self.sources
        )

    def _check_rpki_ready(self) -> None:
        if self.core.held and self._rpki_ready():
            self._release(f"RPKI synced ({', '.join(s.name for s in self.sources if s.synced)})")

    def _release(self, why: str, level: str = "info") -> None:
        n = self.core.release()
        if self._hold_task is not None and self._hold_task is not asyncio.current_task():
            self._hold_task.cancel()
        self._hold_task = None
        self._schedule_flush()
        self._print(
            {
                "event": "rpki_ready",
                "level": level,
                "released": n,
                "message": f"{why}: {n} held routes evaluated and advertised per policy",
            }
        )

    async def _hold_timeout(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while self.core.held and loop.time() < end:
            await asyncio.sleep(0.2)
            self._check_rpki_ready()  # a standby switch can complete readiness too
        if self.core.held:
            missing = ", ".join(s.name for s in self.sources if not s.synced and s.client.enabled)
            self._release(
                f"WARNING: RPKI not synced after {seconds:g} s (no data yet from {missing}); "
                "routes released with the RPKI data held now",
                "warning",
            )

    def _on_switch(self, client: RTRClient, enabled: bool) -> None:
        what = "takes over" if enabled else "stands by (a more preferred cache is in sync)"
        self._print(
            {
                "event": "rpki_switch",
                "source": client.source,
                "enabled": enabled,
                "message": f"RPKI {client.source} (preference {client.preference}) {what}",
            }
        )

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

    # ---- configuration reload (SIGHUP), as BIRD's 'configure' --------------------------------

    #: [router] / [exabgp] keys a reload cannot change (the BGP identity and listeners)
    RESTART_ONLY = ("asn", "router_id", "listen", "port", "exabgp", "socket")

    def request_reload(self) -> None:
        """SIGHUP: reload the configuration file (one reload at a time, in order)."""
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.ensure_future(self.reload())
        else:
            self._reload_again = True

    async def reload(self) -> bool:
        """Re-read the configuration file and apply it without touching what did not change:
        neighbors added / removed / re-created (session settings changed), policies
        re-evaluated in place, RPKI sources added / removed.  A file with errors, or one that
        changes a restart-only key, is refused and the running configuration kept."""
        while True:
            self._reload_again = False
            ok = await self._reload_once()
            if not self._reload_again:
                return ok

    async def _reload_once(self) -> bool:
        path = self.config.path

        def refuse(why: str) -> bool:
            self._print(
                {
                    "event": "reload",
                    "ok": False,
                    "level": "error",
                    "message": f"configuration NOT reloaded, the running one is kept: {why}",
                }
            )
            return False

        try:
            new = load_config(path)
        except ConfigError as e:
            return refuse(str(e))
        for key in self.RESTART_ONLY:
            if getattr(new, key) != getattr(self.config, key):
                return refuse(
                    f"{path}: {key} changed ({getattr(self.config, key)} -> "
                    f"{getattr(new, key)}): that needs a restart"
                )
        # settings of the process itself (and their command-line overrides) stay as started
        new.control_socket, new.metrics = self.config.control_socket, self.config.metrics
        new.display = self.config.display
        added_sources: list[tuple[RPKISourceConfig, RPKISource]] = []
        running = [s.config for s in self.sources]
        for src in new.rpki:
            if src in running:
                continue
            try:
                added_sources.append((src, await self._make_source(src.name, src)))
            except (RuntimeError, OSError) as e:
                for _c, rs in added_sources:
                    await self._close_source(rs)
                return refuse(str(e))
        sock = self.config.socket or (self.workdir / "exabgp.sock")
        old_specs = {ip_key(ps.address): ps for ps in self._speaker_spec(sock).peers}
        old_config, self.config = self.config, new
        new_spec = self._speaker_spec(sock)
        restart = [
            ip_key(ps.address)
            for ps in new_spec.peers
            if ip_key(ps.address) in old_specs and old_specs[ip_key(ps.address)] != ps
        ]
        done = self.core.reconfigure(new, restart)
        # RPKI sources: the removed ones stop and their data goes; the added ones start
        removed = [s for s in self.sources if s.config not in new.rpki]
        for src in removed:
            self.sources.remove(src)
            if self.rtr is not None:
                await self.rtr.remove(src.client)
            await self._close_source(src)
            self.core.on_vrp_changes(self.store.flush(src.name))
        for _cfg, rs in added_sources:
            self.sources.append(rs)
            if self.rtr is not None:
                self.rtr.add(rs.client)
        if self.exabgp is not None and (done["added"] or done["removed"] or restart):
            self.exabgp.reconfigure(new_spec)
        self._schedule_flush()
        parts = [f"{k} {', '.join(v)}" for k, v in done.items() if v]
        parts += [f"RPKI source removed: {s.name}" for s in removed]
        parts += [f"RPKI source added: {rs.name}" for _c, rs in added_sources]
        if new.prefer_valid != old_config.prefer_valid:
            parts.append(f"prefer_valid {new.prefer_valid}")
        if new.depref_local_pref != old_config.depref_local_pref:
            parts.append(f"depref_local_pref {new.depref_local_pref}")
        external = (
            "; reload your own ExaBGP for the neighbor changes"
            if self.exabgp is None and (done["added"] or done["removed"] or restart)
            else ""
        )
        self._print(
            {
                "event": "reload",
                "ok": True,
                **done,
                "rpki_removed": [s.name for s in removed],
                "rpki_added": [rs.name for _c, rs in added_sources],
                "message": f"configuration reloaded from {path}: "
                + ("; ".join(parts) if parts else "no change")
                + external,
            }
        )
        return True

    def confirm_reloads(self) -> None:
        """SIGUSR2: apply VRP file reloads held back by the shrink guard."""
        for src in self.sources:
            if src.files is not None and src.files.held is not None:
                src.files.confirm()

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
