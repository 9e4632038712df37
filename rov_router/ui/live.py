"""The live table (rich): RPKI sources and BGP neighbors at the top, the routes that changed
most recently with their verdict and the reason in plain words, and an event log.

Only the rows that fit the terminal are ever rendered (from a bounded list of recently changed
routes), so a full table costs nothing to redraw.  Redraws run from the event loop every
0.25 s (no rendering thread touches the router's state).  Keys: ``a`` all, ``v`` valid,
``i`` invalid, ``n`` not-found, ``d`` dropped only, ``q`` quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..router import HELD, RouteEvent

if TYPE_CHECKING:
    from ..app import App

COLOUR = {"valid": "green", "invalid": "red", "not-found": "yellow"}
RECENT = 2000


class LiveDisplay:
    def __init__(
        self,
        app: App,
        *,
        state_filter: str | None = None,
        prefix_filter: str = "",
        neighbor_filter: str = "",
    ) -> None:
        self.app = app
        self.console = Console()
        self.recent: OrderedDict[tuple[str, str], object] = OrderedDict()
        self.log: deque[str] = deque(maxlen=8)
        self.state_filter = state_filter
        self.prefix_filter = prefix_filter
        self.neighbor_filter = neighbor_filter
        self._live: Live | None = None
        self.narration = ""
        self._task: asyncio.Task | None = None
        self._term = None
        app.core.listeners.append(self._on_core)

    # ---- input -------------------------------------------------------------------------------

    def _on_core(self, ev) -> None:
        if isinstance(ev, RouteEvent):
            key = (ev.route.peer.address, ev.route.prefix)
            self.recent.pop(key, None)
            self.recent[key] = ev
            if len(self.recent) > RECENT:
                self.recent.popitem(last=False)
            if ev.kind == "state":
                self.log.append(
                    f"{time.strftime('%H:%M:%S')} {ev.route.prefix} "
                    f"AS{ev.route.origin}: {ev.old_state} -> {ev.route.state}"
                )

    def narrate(self, text: str) -> None:
        """Lab narration shown above the tables (the current step and its explanation)."""
        self.narration = text.strip()

    def event(self, obj: dict) -> None:
        if obj.get("event") in ("route", "route_state"):
            return
        msg = obj.get("message", "")
        if msg:
            self.log.append(f"{time.strftime('%H:%M:%S')} {msg.splitlines()[0]}")

    def _key(self) -> None:
        with contextlib.suppress(OSError):
            ch = sys.stdin.read(1)
            if ch == "q":
                self.app._stop.set()
            elif ch in "avind":
                self.state_filter = {
                    "a": None,
                    "v": "valid",
                    "i": "invalid",
                    "n": "not-found",
                    "d": "dropped",
                }[ch]

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        # log records go to the event panel, not across the table
        root = logging.getLogger()
        self._saved_handlers = root.handlers[:]
        handler = logging.Handler()
        handler.emit = lambda rec: self.log.append(  # type: ignore[method-assign]
            f"{time.strftime('%H:%M:%S')} {rec.levelname.lower()}: {rec.getMessage()}"
        )
        root.handlers = [handler]
        self._live = Live(
            self.render(),
            console=self.console,
            auto_refresh=False,
            screen=False,
            transient=False,
            redirect_stdout=False,
        )
        self._live.start()
        if sys.stdin.isatty():
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._term = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            asyncio.get_running_loop().add_reader(fd, self._key)
        self._task = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self._live is not None:
                self._live.update(self.render(), refresh=True)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._term is not None:
            import termios

            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._term)
            self._term = None
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.stop()
            self._live = None
        if getattr(self, "_saved_handlers", None) is not None:
            logging.getLogger().handlers = self._saved_handlers
            self._saved_handlers = None

    # ---- rendering ---------------------------------------------------------------------------

    def render(self):
        height = self.console.size.height
        rpki = self._rpki_table()
        neigh = self._neighbor_table()
        used = 9 + len(self.app.sources) + len(self.app.core.peers) + len(self.log)
        parts = []
        if self.narration:
            parts.append(
                Panel(self.narration, title="lab", title_align="left", border_style="cyan")
            )
            used += 2 + self.narration.count("\n") + 1
        rows = max(3, height - used - 4)
        return Group(
            *parts,
            rpki,
            neigh,
            self._route_table(rows),
            Panel("\n".join(self.log) or "-", title="events", title_align="left"),
        )

    def _rpki_table(self) -> Table:
        t = Table(title="RPKI", title_justify="left", expand=True)
        for c in (
            "source",
            "cache",
            "state",
            "RTR",
            "session",
            "serial",
            "updated",
            "VRPs v4/v6",
            "ASPA",
            "expire in",
        ):
            t.add_column(c)
        now = time.time()
        for src in self.app.sources:
            info = src.client.session.info()
            c = self.app.store.counts(src.name)
            ago = f"{now - src.last_update:.0f} s ago" if src.last_update else "-"
            exp = f"{info.expires_in:.0f} s" if info.expires_in is not None else "-"
            # disconnected while the cache is away (data kept); standby while a more
            # preferred cache serves
            state = info.state if src.client.enabled else "standby"
            t.add_row(
                src.name,
                f"{src.client.host}:{src.client.port}",
                state,
                f"v{info.version}",
                str(info.session_id if info.session_id is not None else "-"),
                str(info.serial if info.serial is not None else "-"),
                ago,
                f"{c['vrps_v4']}/{c['vrps_v6']}",
                str(c["aspas"]),
                exp,
            )
        return t

    def _neighbor_table(self) -> Table:
        t = Table(
            title=f"BGP neighbors of AS{self.app.config.asn}", title_justify="left", expand=True
        )
        for c in (
            "neighbor",
            "AS",
            "role",
            "policy",
            "state",
            "received",
            "accepted",
            "dropped",
            "valid",
            "invalid",
            "not-found",
            "advertised",
        ):
            t.add_column(c)
        for p in self.app.core.peers.values():
            c = p.counts()
            st = Text(p.state, style="green" if p.up else "red")
            t.add_row(
                p.address,
                str(p.config.asn),
                p.config.role,
                p.config.policy,
                st,
                str(c["received"]),
                str(c["accepted"]),
                str(c["dropped"]),
                str(c["valid"]),
                str(c["invalid"]),
                str(c["not-found"]),
                str(len(p.adj_out)),
            )
        return t

    def _route_table(self, rows: int) -> Table:
        f = self.state_filter
        title = (
            "routes, newest changes first"
            + (f" \\[{f}]" if f else "")
            + "   keys: a all  v valid  i invalid  n not-found  d dropped  q quit"
        )
        t = Table(title=title, title_justify="left", expand=True)
        for c, kw in (
            ("prefix", {}),
            ("origin", {}),
            ("path", {"max_width": 24}),
            ("neighbor", {}),
            ("verdict", {}),
            ("ASPA", {}),
            ("action", {}),
            ("why", {"ratio": 1}),
        ):
            t.add_column(c, **kw)
        shown = 0
        for (_peer, _prefix), ev in reversed(self.recent.items()):
            if shown >= rows:
                break
            r = ev.route  # type: ignore[attr-defined]
            gone = ev.kind in ("withdrawn", "flushed")  # type: ignore[attr-defined]
            if f == "dropped" and (r.accepted or gone):
                continue
            if f and f != "dropped" and r.state != f:
                continue
            if self.prefix_filter and self.prefix_filter not in r.prefix:
                continue
            if self.neighbor_filter and self.neighbor_filter != r.peer.address:
                continue
            colour = COLOUR[r.state]
            held = r.action == HELD  # start-up: nothing is advertised before RPKI synced
            action = "withdrawn" if gone else ("DROPPED" if not (r.accepted or held) else r.action)
            reason = self.app.core.verdict(r).reason
            aspa = r.aspa_state or "-"
            if r.aspa is not None and r.aspa.state.value == "invalid":
                reason = f"{reason}; ASPA: {r.aspa.reason}"
            t.add_row(
                r.prefix,
                "NONE" if r.origin is None else f"AS{r.origin}",
                r.attrs.path_str(),
                r.peer.address,
                Text(r.state, style=colour),
                Text(
                    aspa,
                    style={"valid": "green", "invalid": "red", "unknown": "yellow"}.get(
                        aspa, "dim"
                    ),
                ),
                Text(action, style="dim" if gone else ("red" if not r.accepted else colour)),
                reason,
            )
            shown += 1
        return t
