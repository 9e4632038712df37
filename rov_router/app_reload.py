"""Configuration reload of ``rov-router run`` on SIGHUP, as BIRD's ``configure`` (a part of
:class:`rov_router.app.App`): apply a changed configuration file without touching what did
not change, or refuse it and keep the running one."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

from .app_rpki import RPKISource
from .config import ConfigError, RPKISourceConfig, load_config


def ip_key(address: str) -> str:
    return str(ip_address(address))


class ConfigReload:
    """Reloading the configuration (a mixin: App holds the state it uses)."""

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
