"""The RPKI side of ``rov-router run`` (a part of :class:`rov_router.app.App`): the configured
RPKI sources (an RTR client each, plus the embedded cache serving a VRP file), switching
between them by preference, and the start-up hold (no route leaves before RPKI has synced
once)."""

from __future__ import annotations

import asyncio

from .config import RPKISourceConfig
from .rtr.cache import CacheState
from .rtr.client import RTRClient, RTRManager
from .rtr.server import FileCache, FileSource, RTRServer


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


class RPKISide:
    """The App's RPKI sources and start-up hold (a mixin: App holds the state it uses)."""

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

    def confirm_reloads(self) -> None:
        """SIGUSR2: apply VRP file reloads held back by the shrink guard."""
        for src in self.sources:
            if src.files is not None and src.files.held is not None:
                src.files.confirm()
