"""The event lines of ``rov-router run``: plain text (``HH:MM:SS message``) or JSON lines, or
the live table's event log.  Route and neighbor changes are read from the status view."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..status import RouteChange, Status


class EventPrinter:
    """Prints the app's events (dicts with a ``message``) and, in ``plain`` / ``json`` mode,
    every route state change (and in ``json`` every new route).  With a live ``display`` the
    events go to its log instead.  ``on_write`` is called after a JSON line is written (the
    app flushes the output once per event-loop round, not once per line)."""

    def __init__(
        self,
        status: Status,
        mode: str,
        out: TextIO,
        *,
        on_write: Callable[[], None] = lambda: None,
    ) -> None:
        self.status = status
        self.mode = mode
        self.out = out
        self.on_write = on_write
        self.display: Any = None  # the live table, when it runs
        status.on_neighbor_change(self._on_neighbor)
        if mode in ("plain", "json"):
            status.on_route_change(self._on_route)

    def emit(self, obj: dict) -> None:
        if self.display is not None:
            self.display.event(obj)
            return
        if self.mode == "json":
            self.out.write(json.dumps(obj) + "\n")
            self.on_write()
        else:
            print(f"{time.strftime('%H:%M:%S')} {obj['message']}", file=self.out, flush=True)

    def _on_neighbor(self, neighbor: str, state: str, reason: str) -> None:
        self.emit(
            {
                "event": "neighbor",
                "neighbor": neighbor,
                "state": state,
                "reason": reason,
                "message": f"neighbor {neighbor} {state}" + (f" ({reason})" if reason else ""),
            }
        )

    def _on_route(self, ch: RouteChange) -> None:
        if ch.kind == "state":
            v = self.status.change_view(ch)
            self.emit(
                {
                    "event": "route_state",
                    "prefix": v.prefix,
                    "origin": v.origin,
                    "neighbor": v.neighbor,
                    "from": v.old_state,
                    "state": v.state,
                    "aspa": v.aspa,
                    "aspa_reason": v.aspa_reason,
                    "action": v.action,
                    "reason": v.reason,
                    "message": f"{v.prefix} AS{v.origin} from {v.neighbor}: "
                    f"{v.old_state} -> {v.state} ({v.action}): {v.reason}"
                    + (f"; ASPA invalid: {v.aspa_reason}" if v.aspa == "invalid" else ""),
                }
            )
        elif ch.kind == "new" and self.mode == "json":
            # a full table sends hundreds of thousands of these (change_view is the cheap view)
            v = self.status.change_view(ch)
            self.emit(
                {
                    "event": "route",
                    "prefix": v.prefix,
                    "origin": v.origin,
                    "path": v.path,
                    "neighbor": v.neighbor,
                    "state": v.state,
                    "aspa": v.aspa,
                    "aspa_reason": v.aspa_reason,
                    "action": v.action,
                    "reason": v.reason,
                    "message": "",
                }
            )
