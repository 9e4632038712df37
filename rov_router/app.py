"""`rov-router run`: wires RTR sources, the router core, ExaBGP (through the bridge) and the
display into one asyncio loop.

Flow (one way): RTR -> VRP store -> revalidation -> RIB / policy -> ExaBGP commands, display.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .bgp.speaker import BridgeEnd, ExaBGP, PeerSpec, SpeakerSpec, local_address_for
from .config import RouterConfig
from .router import PeerEvent, RouteEvent, RouterCore
from .rpki.store import VRPStore
from .rtr import session as S
from .rtr.cache import CacheState
from .rtr.client import Applied, RTRClient, RTRManager
from .rtr.server import FileCache, FileSource, RTRServer

log = logging.getLogger("rov_router.app")
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
        self._path_attrs = None
        self._path_text = ""
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
        self.started = time.time()
        self.display = None
        self.core.listeners.append(self._on_core_event)

    # ---- events ------------------------------------------------------------------------------

    def _print(self, obj: dict) -> None:
        if self.display is not None:
            self.display.event(obj)
            return
        if self.display_mode == "json":
            # flushed once per event-loop round (_flush), not once per line
            self.out.write(json.dumps(obj) + "\n")
            self._schedule_flush()
        else:
            print(f"{time.strftime('%H:%M:%S')} {obj['message']}", file=self.out, flush=True)

    def _on_core_event(self, ev) -> None:
        if isinstance(ev, PeerEvent):
            self._print(
                {
                    "event": "neighbor",
                    "neighbor": ev.peer,
                    "state": ev.state,
                    "reason": ev.reason,
                    "message": f"neighbor {ev.peer} {ev.state}"
                    + (f" ({ev.reason})" if ev.reason else ""),
                }
            )
        elif isinstance(ev, RouteEvent) and self.display_mode in ("plain", "json"):
            r = ev.route
            if ev.kind == "state":
                v = self.core.verdict(r)
                self._print(
                    {
                        "event": "route_state",
                        "prefix": r.prefix,
                        "origin": r.origin,
                        "neighbor": r.peer.address,
                        "from": ev.old_state,
                        "state": r.state,
                        "aspa": r.aspa_state,
                        "aspa_reason": r.aspa.reason if r.aspa is not None else None,
                        "action": r.action,
                        "reason": v.reason,
                        "message": f"{r.prefix} AS{r.origin} from {r.peer.address}: "
                        f"{ev.old_state} -> {r.state} ({r.action}): {v.reason}"
                        + (
                            f"; ASPA invalid: {r.aspa.reason}"
                            if r.aspa is not None and r.aspa_state == "invalid"
                            else ""
                        ),
                    }
                )
            elif ev.kind == "new" and self.display_mode == "json":
                # a full table sends hundreds of thousands of these: the reason is cheap for
                # not-found, the AS path text is shared by all routes of one UPDATE
                reason = (
                    f"no VRP covers {r.prefix}"
                    if r.state == "not-found"
                    else self.core.verdict(r).reason
                )
                if r.attrs is not self._path_attrs:
                    self._path_attrs, self._path_text = r.attrs, r.attrs.path_str()
                self._print(
                    {
                        "event": "route",
                        "prefix": r.prefix,
                        "origin": r.origin,
                        "path": self._path_text,
                        "neighbor": r.peer.address,
                        "state": r.state,
                        "aspa": r.aspa_state,
                        "aspa_reason": r.aspa.reason if r.aspa is not None else None,
                        "action": r.action,
                        "reason": reason,
                        "message": "",
                    }
                )

    def _on_rtr_event(self, src: RPKISource, ev) -> None:
        if isinstance(ev, Applied):
            n = self.core.on_vrp_changes(ev.changes)
            src.last_update = time.time()
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
        elif isinstance(ev, S.Log) and ev.level in ("warning", "error"):
            self._print(
                {"event": "rpki_log", "source": src.name, "level": ev.level, "message": ev.message}
            )

    def _on_line(self, line: bytes) -> None:
        self.core.feed_line(line)
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
        cmds = self.core.commands()
        if cmds and self.bridge is not None:
            for c in cmds:
                self.bridge.send(c)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def _start_rpki(self) -> None:
        for i, src in enumerate(self.config.rpki):
            name = src.name or f"rpki{i}"
            if src.vrps is not None:
                cache = CacheState(refresh=src.refresh, retry=src.retry, expire=src.expire)
                files = FileCache(
                    cache,
                    FileSource(src.vrps, src.slurm, "auto", src.ignore_expires),
                    poll=0.5,
                    on_reload=lambda lvl, msg, n=name: self._print(
                        {"event": "cache", "source": n, "level": lvl, "message": msg}
                    ),
                )
                files.reload(force=True)
                if not cache.has_data:
                    raise RuntimeError(f"RPKI source {name}: {files.last_error}")
                server = RTRServer(
                    cache, "127.0.0.1", 0, notify_interval=1.0, on_event=lambda ev: None
                )
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
                max_backoff=5.0,
                on_event=lambda ev, h=holder: self._on_rtr_event(h[0], ev),
                transport=src.transport_options() if src.cache is not None else None,
            )
            client.preference = src.preference
            rs = RPKISource(name, client, cache, server, files)
            holder.append(rs)
            self.sources.append(rs)
        self.rtr = RTRManager(
            self.store, [s.client for s in self.sources], on_switch=self._on_switch
        )
        self._rtr_task = asyncio.ensure_future(self.rtr.run())

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
                    description=n.description or n.role,
                    hold_time=n.hold_time,
                )
            )
        return SpeakerSpec("exabgp", peers, listen=listen, port=cfg.port, socket=sock)

    async def run(self) -> int:
        """The whole life of `rov-router run`: start, wait for a signal or the duration, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.write_state)
        try:
            await self.start()
            waiter = asyncio.ensure_future(self._stop.wait())
            watch = asyncio.ensure_future(self._watch_exabgp())
            done, _ = await asyncio.wait(
                {waiter, watch}, timeout=self.duration, return_when=asyncio.FIRST_COMPLETED
            )
            for t in (waiter, watch):
                t.cancel()
            return 0 if watch not in done else 1
        finally:
            await self.shutdown()

    def request_stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        """Start RPKI sources, the bridge, ExaBGP and the display (for embedding, e.g. labs)."""
        if self.display_mode == "live" and self.display is None:
            from .ui.live import LiveDisplay

            self.display = LiveDisplay(self, **self.filters)
        await self._start_rpki()
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
                "message": f"rov-router AS{self.config.asn} "
                f"({self.config.router_id}): {len(self.core.peers)} neighbors, "
                f"{len(self.sources)} RPKI source(s); ExaBGP "
                f"{'pid ' + str(self.exabgp.proc.pid) if self.exabgp else 'external'}"
                f", bridge socket {sock}",
            }
        )
        from .ops.control import ControlServer, default_socket

        try:
            self.control = ControlServer(self, self.config.control_socket or default_socket())
            await self.control.start()
        except RuntimeError:
            if self.config.control_socket is not None:
                raise
            # another router already answers on the default socket: use our own
            self.control = ControlServer(self, self.workdir / "control.sock")
            await self.control.start()
        if self.config.metrics is not None:
            from .ops.metrics import start_metrics

            host, port = self.config.metrics
            self.metrics = start_metrics(self, host, port)
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
        if self.display is not None:
            self.display.start()

    async def _watch_exabgp(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            if self.exabgp is not None and not self.exabgp.running:
                self._print({"event": "error", "message": "ExaBGP exited:\n" + self.exabgp.tail()})
                return

    async def shutdown(self) -> None:
        if self.control is not None:
            await self.control.close()
            self.control = None
        if self.metrics is not None:
            server = self.metrics[0] if isinstance(self.metrics, tuple) else None
            if server is not None:
                server.shutdown()
            self.metrics = None
        if self.display is not None:
            self.display.stop()
            self.display = None
        if self.bridge is not None:
            await self.bridge.drain(2.0)
        if self.exabgp is not None:
            self.exabgp.stop()
        if self.rtr is not None:
            self.rtr.stop()
            with contextlib.suppress(Exception):
                await self._rtr_task
        for src in self.sources:
            if src.files is not None:
                await src.files.stop()
            if src.server is not None:
                await src.server.close()
        if self.bridge is not None:
            await self.bridge.close()
        self.write_state()
        self._print({"event": "summary", **self.summary(), "message": self.summary_text()})
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- state -------------------------------------------------------------------------------

    def summary(self) -> dict:
        states = {"valid": 0, "invalid": 0, "not-found": 0}
        dropped = 0
        for r in self.core.routes():
            states[r.state] += 1
            dropped += not r.accepted
        return {
            "routes": sum(states.values()),
            **states,
            "dropped": dropped,
            "loc_rib": len(self.core.loc_rib()),
            "unparsed_lines": self.core.stats.unparsed,
            "revalidations": self.core.stats.revalidations,
        }

    def summary_text(self) -> str:
        s = self.summary()
        return (
            f"summary: {s['routes']} routes ({s['valid']} valid, {s['invalid']} invalid, "
            f"{s['not-found']} not-found), {s['dropped']} dropped, {s['loc_rib']} in "
            f"Loc-RIB, {s['unparsed_lines']} unparsable lines"
        )

    def state_rpki(self) -> list[dict]:
        out = []
        for src in self.sources:
            info = src.client.session.info()
            out.append(
                {
                    "name": src.name,
                    "cache": f"{src.client.host}:{src.client.port}",
                    "preference": src.preference,
                    "connected": src.client.connected,
                    "state": info.state,
                    "version": info.version,
                    "session_id": info.session_id,
                    "serial": info.serial,
                    "refresh": info.timers.refresh,
                    "retry": info.timers.retry,
                    "expire": info.timers.expire,
                    "expires_in": info.expires_in,
                    "last_update": src.last_update,
                    "last_error": src.client.last_error,
                    **self.store.counts(src.name),
                }
            )
        return out

    def state_neighbors(self) -> list[dict]:
        return [
            {
                "address": p.address,
                "asn": p.config.asn,
                "role": p.config.role,
                "policy": p.config.policy,
                "aspa_policy": p.config.aspa_policy,
                "state": p.state,
                "reason": p.reason,
                "since": p.since,
                "advertised": len(p.adj_out),
                **p.counts(),
            }
            for p in self.core.peers.values()
        ]

    def state(self) -> dict:
        from .ops.control import _route_json

        now = time.time()
        return {
            "time": now,
            "uptime": now - self.started,
            "rpki": self.state_rpki(),
            "neighbors": self.state_neighbors(),
            "routes": [_route_json(self, r) for r in self.core.routes()],
            "stats": vars(self.core.stats),
            "summary": self.summary(),
        }

    def write_state(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.state(), default=str))
        tmp.replace(self.state_file)
