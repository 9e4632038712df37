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
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ..status import HELD, RouteChange, RouteFilter, Status

COLOUR = {"valid": "green", "invalid": "red", "not-found": "yellow"}
RECENT = 2000


class LiveDisplay:
    """The live table over a :class:`Status` view; ``on_quit`` is called for the ``q`` key."""

    def __init__(
        self,
        status: Status,
        *,
        on_quit: Callable[[], None] | None = None,
        state_filter: str | None = None,
        prefix_filter: str = "",
        neighbor_filter: str = "",
    ) -> None:
        self.status = status
        self.on_quit = on_quit
        self.console = Console()
        self.recent: OrderedDict[tuple[str, str], RouteChange] = OrderedDict()
        self.log: deque[str] = deque(maxlen=8)
        self.state_filter = state_filter
        self.prefix_filter = prefix_filter
        self.neighbor_filter = neighbor_filter
        self._live: Live | None = None
        self.narration = ""  # the current step and its explanation
        self.lesson = ""  # the scenario's title and lesson
        self.results: deque[str] = deque(maxlen=8)
        self._advance: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._term = None
        status.on_route_change(self._on_change)

    # ---- input -------------------------------------------------------------------------------

    def _on_change(self, ch: RouteChange) -> None:
        key = (ch.neighbor, ch.prefix)
        self.recent.pop(key, None)
        self.recent[key] = ch
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        if ch.kind == "state":
            self.log.append(
                f"{time.strftime('%H:%M:%S')} {ch.prefix} "
                f"AS{ch.origin}: {ch.old_state} -> {ch.state}"
            )

    def narrate(self, text: str) -> None:
        """Lab narration shown above the tables (the current step and its explanation)."""
        self.narration = text.strip()
        self.results.clear()

    def result(self, text: str) -> None:
        """What happened in the current step (an outcome checked)."""
        self.results.append(text.strip())

    async def wait_key(self) -> None:
        """Presenter mode: until space or Enter is pressed (at once without a terminal)."""
        if self._term is None:
            return
        self._advance = asyncio.Event()
        try:
            await self._advance.wait()
        finally:
            self._advance = None

    def event(self, obj: dict) -> None:
        if obj.get("event") in ("route", "route_state"):
            return
        msg = obj.get("message", "")
        if msg:
            self.log.append(f"{time.strftime('%H:%M:%S')} {msg.splitlines()[0]}")

    def _key(self) -> None:
        with contextlib.suppress(OSError):
            ch = sys.stdin.read(1)
            if ch in " \n\r" and self._advance is not None:
                self._advance.set()
            elif ch == "q" and self.on_quit is not None:
                self.on_quit()
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
    #
    # Designed for 80x24 first: every table keeps its most important columns (which are never
    # cut) and adds the others, by priority, while they fit; a route's reason goes on a detail
    # line under it, or into its own column when the terminal is wide enough.  The whole display
    # is sized to the terminal's height so it never scrolls.

    def render(self):
        width, height = self.console.size
        budget = max(10, height - 1)
        small = height < 40
        parts: list = []
        if self.narration or self.lesson:
            parts.append(self._lab_panel(width, cap=max(4, budget // 3)))
        parts += self._rpki_lines(width, titled=not small)
        parts += self._neighbor_lines(width, titled=not small)
        used = sum(self._height(p, width) for p in parts)
        # events: at least one line (more on a tall screen); routes get what is left
        n_events = min(len(self.log), max(1, (budget - used) // 4))
        events = [
            Text(f"{line}", no_wrap=True, overflow="ellipsis", style="dim")
            for line in list(self.log)[len(self.log) - n_events :]
        ]
        if not small:
            events.insert(0, Text("events", style="bold"))
        rows = budget - used - len(events)
        parts += self._route_lines(width, rows)
        parts += events
        return Group(*parts)

    def _lab_panel(self, width: int, cap: int) -> Panel:
        """The lesson, the current step with its explanation, then the step's latest results,
        in at most ``cap`` lines: results give way first, then the lesson is shortened."""
        inner = max(20, width - 4)

        def wrap(text: str, style: str = "") -> list[Text]:
            out: list[Text] = []
            for para in text.splitlines():
                out += list(Text(para.strip(), style=style).wrap(self.console, inner))
            return out

        title, _, lesson = self.lesson.partition("\n")
        head, _, explain = self.narration.partition("\n")
        step = (wrap(head, "bold") + wrap(explain)) if self.narration else []
        lesson_lines = wrap(" ".join(lesson.split()), "") if lesson else []
        room = max(1, cap - len(step))
        if len(lesson_lines) > room:
            lesson_lines = lesson_lines[: max(1, room - 1)] if room > 1 else lesson_lines[:1]
            last = lesson_lines[-1].copy()
            last.rstrip()
            last.truncate(inner - 2)
            last.append(" …")
            lesson_lines[-1] = last
        lines = [*lesson_lines, *step]
        results = [
            Text(r, style="green" if "ok:" in r else ("red" if "FAILED" in r else "bold"))
            for r in self.results
        ]
        left = cap - len(lines)
        if left > 0 and results:
            lines += results[-left:]
        body = Text("\n").join(lines[:cap]) if lines else Text("")
        label = title.strip("= ").strip() or "lab"
        return Panel(
            body, title=Text(label, style="bold cyan"), title_align="left", border_style="cyan"
        )

    def _height(self, part, width: int) -> int:
        opts = self.console.options.update(width=width)
        return len(self.console.render_lines(part, opts, pad=False))

    def _rpki_lines(self, width: int, titled: bool) -> list:
        now = time.time()
        rows = []
        for src in self.status.rpki():
            ago = f"{now - src.last_update:.0f} s ago" if src.last_update else "-"
            exp = f"{src.expires_in:.0f} s" if src.expires_in is not None else "-"
            # disconnected while the cache is away (data kept); standby while a more
            # preferred cache serves; the records received so far while a sync runs
            state = src.state if src.enabled else "standby"
            if state == "receiving":
                state = f"receiving {src.pending_records:,}"
            rows.append(
                [
                    src.name,
                    Text(state, style="green" if state == "established" else "yellow"),
                    f"v{src.version}",
                    str(src.serial if src.serial is not None else "-"),
                    f"{src.vrps_v4:,}/{src.vrps_v6:,}",
                    f"{src.aspas:,}",
                    exp,
                    ago,
                    src.cache,
                    str(src.session_id if src.session_id is not None else "-"),
                ]
            )
        cols = [
            Col("RPKI source", 1, 24),
            Col("state", 1, 22),
            Col("RTR", 3, 3),
            Col("serial", 2, 10, right=True),
            Col("VRPs v4/v6", 1, 17, right=True),
            Col("ASPA", 4, 8, right=True),
            Col("expires", 2, 9, right=True),
            Col("updated", 5, 10, right=True),
            Col("cache", 6, 45),
            Col("session", 7, 7, right=True),
        ]
        out = tabulate(cols, rows, width)
        if titled:
            out.insert(0, Text("RPKI", style="bold"))
        return out

    def _neighbor_lines(self, width: int, titled: bool) -> list:
        rows = []
        for n in self.status.neighbors():
            rows.append(
                [
                    n.address,
                    str(n.asn),
                    Text(n.state, style="green" if n.up else "red"),
                    str(n.received),
                    str(n.accepted),
                    Text(str(n.dropped), style="red" if n.dropped else ""),
                    str(n.invalid),
                    str(n.advertised),
                    str(n.valid),
                    str(n.not_found),
                    n.role,
                    n.policy,
                    n.description,
                ]
            )
        cols = [
            Col("BGP neighbor", 1, 39),
            Col("AS", 1, 10, right=True),
            Col("state", 1, 11),
            Col("received", 2, 9, right=True),
            Col("accepted", 3, 9, right=True),
            Col("dropped", 2, 9, right=True),
            Col("invalid", 4, 9, right=True),
            Col("advertised", 5, 10, right=True),
            Col("valid", 6, 9, right=True),
            Col("not-found", 6, 9, right=True),
            Col("role", 7, 12),
            Col("policy", 8, 14),
            Col("name", 9, 20),
        ]
        out = tabulate(cols, rows, width)
        if titled:
            out.insert(0, Text(f"BGP neighbors of AS{self.status.asn}", style="bold"))
        return out

    def _route_lines(self, width: int, budget: int) -> list:
        f = self.state_filter
        title = Text.assemble(
            ("routes, newest changes first", "bold"),
            (f" [{f}]" if f else "", "bold cyan"),
            ("   keys: a all  v valid  i invalid  n not-found  d dropped  q quit", "dim"),
        )
        title.no_wrap, title.overflow = True, "ellipsis"
        rows: list[list] = []
        reasons: list[str] = []
        flt = RouteFilter(state=f or "", neighbor=self.neighbor_filter, prefix=self.prefix_filter)
        for ch in reversed(self.recent.values()):
            if len(rows) >= budget:
                break
            if (f == "dropped" and ch.gone) or not flt.match(ch.route):
                continue
            r = self.status.route_view(ch.route)
            colour = COLOUR[r.state]
            held = r.action == HELD  # start-up: nothing is advertised before RPKI synced
            gone = ch.gone
            action = "withdrawn" if gone else ("DROPPED" if not (r.accepted or held) else r.action)
            reason = r.reason
            aspa = r.aspa or "-"
            if r.aspa == "invalid":
                reason = f"{reason}; ASPA: {r.aspa_reason}"
            rows.append(
                [
                    r.prefix,
                    "NONE" if r.origin is None else f"AS{r.origin}",
                    Text(r.state, style=colour),
                    Text(action, style="dim" if gone else ("red" if not r.accepted else colour)),
                    r.neighbor,
                    Text(
                        aspa,
                        style={"valid": "green", "invalid": "red", "unknown": "yellow"}.get(
                            aspa, "dim"
                        ),
                    ),
                    r.path,
                ]
            )
            reasons.append(reason)
        cols = [
            Col("prefix", 1, 43),
            Col("origin", 1, 12),
            Col("verdict", 1, 9),
            Col("action", 1, 9),
            Col("neighbor", 2, 39),
            Col("ASPA", 4, 7),
            Col("path", 5, 30),
        ]
        order, widths = fit(cols, rows, width)
        used = sum(widths[i] + 1 for i in order)
        inline = width - used >= 50  # room for the reason as a column
        out: list = [title]
        header = _line(cols, [Text(c.header) for c in cols], order, widths, "bold")
        if inline:
            header.append(" why", style="bold")
        out.append(header)
        left = budget - 2
        for row, reason in zip(rows, reasons, strict=True):
            line = _line(cols, row, order, widths)
            if inline:
                wrapped = Text(reason).wrap(self.console, width - used)
                need = len(wrapped)
                if need > left:
                    break
                line.append(" ")
                line.append_text(wrapped[0])
                out.append(line)
                out += [Text(" " * used) + w for w in list(wrapped)[1:]]
            else:
                detail = Text("  ↳ " + reason, style="italic")
                need = 1 + len(detail.wrap(self.console, width))
                if need > left:
                    break
                out += [line, detail]
            left -= need
        return out


class Col:
    """A column: its header, priority (1 = always shown), the widest it gets, alignment."""

    def __init__(self, header: str, prio: int, max_width: int, *, right: bool = False) -> None:
        self.header, self.prio, self.max, self.right = header, prio, max_width, right


def _cell(value) -> Text:
    return value if isinstance(value, Text) else Text(str(value))


def fit(cols: list[Col], rows: list[list], width: int) -> tuple[list[int], list[int]]:
    """The columns that fit in ``width`` (by priority, in their own order) and each one's
    width (the widest cell, at most the column's maximum)."""
    widths = [
        min(c.max, max([len(c.header), *(len(_cell(r[i]).plain) for r in rows)]))
        for i, c in enumerate(cols)
    ]
    chosen: list[int] = []
    used = 0
    for i in sorted(range(len(cols)), key=lambda i: cols[i].prio):
        if used + widths[i] + (1 if chosen else 0) <= width:
            used += widths[i] + (1 if chosen else 0)
            chosen.append(i)
    return sorted(chosen), widths


def _line(cols: list[Col], row: list, order: list[int], widths: list[int], style="") -> Text:
    out = Text(style=style, no_wrap=True, overflow="ellipsis")
    for n, i in enumerate(order):
        cell = _cell(row[i]).copy()
        if len(cell.plain) > widths[i]:
            cell.truncate(widths[i], overflow="ellipsis")
        pad = " " * (widths[i] - len(cell.plain))
        if n:
            out.append(" ")
        if cols[i].right:
            out.append(pad)
            out.append_text(cell)
        else:
            out.append_text(cell)
            out.append(pad)
    return out


def tabulate(cols: list[Col], rows: list[list], width: int) -> list[Text]:
    """A header line and one line per row, with the columns that fit ``width``."""
    order, widths = fit(cols, rows, width)
    out = [_line(cols, [Text(c.header) for c in cols], order, widths, "bold")]
    out += [_line(cols, r, order, widths) for r in rows]
    return out
