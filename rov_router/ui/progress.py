"""Progress of long tasks (an RTR sync, loading a VRP file, replaying an RTR dump or an MRT file).

On a terminal: a rich progress bar on stderr (done / total when known, rate, ETA).  Otherwise
(stderr not a terminal, or ``--json``): one line on stderr every ``interval`` seconds (2 s; the
environment variable ``ROV_ROUTER_PROGRESS_INTERVAL`` changes it), plain text or a
``{"event": "progress", ...}`` JSON object.  Progress never goes to stdout, so a ``--json``
stdout stays one result object per line.

A task may have stages (``stage()``: reading a file in bytes, then parsing, then entries); each
stage has its own unit, total and rate.  ``estimate`` is a guess of the total (an RTR sync has
no announced size: the previous sync's record count) shown as ``~N`` and used for the ETA.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL = 2.0


def default_interval() -> float:
    try:
        return max(0.0, float(os.environ.get("ROV_ROUTER_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _scale(unit: str, goal: float | None) -> tuple[float, str]:
    """Bytes in MB (kB for files under 1 MB); other units as they are."""
    if unit != "bytes":
        return 1.0, unit
    return (1e6, "MB") if (goal or 0) >= 1e6 else (1e3, "kB")


class TaskProgress:
    """One long task's progress; see the module text.  ``terminal`` forces (or forbids) the
    rich bar; by default it is used when stderr is a terminal and ``json_lines`` is off."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "records",
        json_lines: bool = False,
        interval: float | None = None,
        terminal: bool | None = None,
        estimate: int | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.estimate = estimate
        self.stage_name = ""
        self.json = json_lines
        self.interval = default_interval() if interval is None else interval
        self.done = self._base = 0
        self.info = ""  # a short text after the figures ("424,223 VRPs", "serial 5")
        self.start = self._last = time.monotonic()
        self._task_start = self.start
        self._rich: Any = None
        self._task: Any = None
        tty = sys.stderr.isatty() if terminal is None else terminal
        if tty and not json_lines:
            self._rich = _shared_bar()
            self._task = self._rich.add_task(label, total=total or estimate, figures="")

    # ---- figures ---------------------------------------------------------------------------

    def rate(self) -> float:
        """Per second since the stage began (what was done before it began is not counted)."""
        return (self.done - self._base) / max(1e-9, time.monotonic() - self.start)

    def _goal(self) -> tuple[int | None, bool]:
        """The total, else the estimate; and whether it is only an estimate."""
        if self.total:
            return self.total, False
        return (self.estimate, True) if self.estimate else (None, False)

    def eta(self) -> float | None:
        goal, _ = self._goal()
        if not goal or not self.done or self.done >= goal:
            return None
        return (goal - self.done) / max(self.rate(), 1e-9)

    def figures(self) -> str:
        """``1,234/5,678 records, 617/s, ETA 7 s`` (the total as ``~N`` when estimated)."""
        if not self.unit:  # a stage without figures (parsing)
            return self.info
        goal, est = self._goal()
        div, unit = _scale(self.unit, goal)
        fmt = ",.1f" if div > 1 else ",.0f"
        of = f"/{'~' if est else ''}{goal / div:{fmt}}" if goal else ""
        per = f" {unit}/s" if div > 1 else "/s"  # 2.0 MB/s; 1,234/s
        s = f"{self.done / div:{fmt}}{of} {unit}, {self.rate() / div:{fmt}}{per}"
        eta = self.eta()
        if eta is not None:
            s += f", ETA {eta:.0f} s"
        if self.info:
            s += f"; {self.info}"
        return s

    def line(self) -> str:
        parts = [f"{self.label}:", self.stage_name, self.figures()]
        return " ".join(p for p in parts if p) + f" ({time.monotonic() - self._task_start:.0f} s)"

    # ---- updates ---------------------------------------------------------------------------

    def stage(
        self, name: str, *, total: int | None = None, unit: str | None = None, done: int = 0
    ) -> None:
        """Start the next stage of the task (own total, unit and rate)."""
        self.stage_name, self.total, self.info = name, total, ""
        self.done = self._base = done
        if unit is not None:
            self.unit = unit
        self.start = time.monotonic()
        self.update(done)

    def update(
        self,
        done: int,
        total: int | None = None,
        *,
        info: str | None = None,
        estimate: int | None = None,
    ) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if estimate is not None:
            self.estimate = estimate
        if info is not None:
            self.info = info
        if self._rich is not None:
            goal, _ = self._goal()
            figures = self.figures()
            # one line whatever the width: the description gives way (the bar goes below 100)
            width = self._rich.console.width
            room = width - len(figures) - (16 if width >= 100 else 0) - 14
            desc = f"{self.label} {self.stage_name}".strip()
            if len(desc) > max(room, 12):
                desc = desc[: max(room, 12) - 1] + "…"
            self._rich.update(
                self._task,
                description=desc,
                completed=min(done, goal) if goal else done,
                total=goal,
                figures=figures,
            )
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._emit("progress")

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def _emit(self, event: str) -> None:
        if self.json:
            goal, est = self._goal()
            doc: dict[str, Any] = {
                "event": event,
                "task": self.label,
                "stage": self.stage_name or None,
                "done": self.done,
                "total": self.total,
                "unit": self.unit,
                "rate": round(self.rate(), 1),
                "elapsed": round(time.monotonic() - self._task_start, 2),
            }
            if est:
                doc["estimate"] = goal
            eta = self.eta()
            if eta is not None:
                doc["eta"] = round(eta, 1)
            if self.info:
                doc["info"] = self.info
            print(json.dumps(doc), file=sys.stderr, flush=True)
        else:
            print(self.line(), file=sys.stderr, flush=True)

    def close(self, *, final: bool = False) -> None:
        """Stop the bar; ``final`` prints the closing figures in plain / JSON mode."""
        if self._rich is not None:
            _release_bar(self._task)
            self._rich = None
        elif final and time.monotonic() - self._task_start >= self.interval:
            self._emit("progress_done")  # only after a task long enough to have shown progress
        self.interval = float("inf")  # closed: no further lines


# one rich display for every bar of the process (rich allows one live display at a time)
_bar: Any = None


def _shared_bar() -> Any:
    global _bar
    if _bar is None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        bar = [BarColumn(bar_width=14)] if console.width >= 100 else []
        _bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            *bar,
            TextColumn("{task.fields[figures]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        _bar.start()
    return _bar


def _release_bar(task: Any) -> None:
    global _bar
    if _bar is None:
        return
    _bar.remove_task(task)
    if not _bar.tasks:
        _bar.stop()
        _bar = None


# ---- loading a VRP file ---------------------------------------------------------------------------

_LOAD_STAGES = {"reading": "bytes", "parsing": "", "entries": "entries", "building": ""}


def load_stages(prog: TaskProgress) -> Callable[[str, int, int | None], None]:
    """A ``progress(stage, done, total)`` callback for ``load_vrp_file`` that drives ``prog``:
    bytes read of the file's size, then parsing, then entries checked of the file's entries."""

    def cb(stage: str, done: int, total: int | None) -> None:
        if stage != prog.stage_name:
            prog.stage(stage, total=total, unit=_LOAD_STAGES.get(stage, "records"), done=done)
        else:
            prog.update(done, total)

    return cb


# ---- RTR syncs -------------------------------------------------------------------------------------


class RTRProgress:
    """Follows the RTR clients' transfers (Cache Response .. End of Data): records received so
    far, their rate, and the previous sync's record count of that cache as the estimate (RTR
    announces no size).  Run :meth:`run` as a task; call :meth:`synced` on each ``Synced``."""

    POLL = 0.1

    def __init__(self, clients: list[Any], *, json_lines: bool = False) -> None:
        self.clients = clients  # a live list: clients may be added later
        self.json = json_lines
        self.previous: dict[str, int] = {}  # source -> records of its last reset
        self._bars: dict[str, TaskProgress] = {}

    def synced(self, source: str, records: int, reset: bool) -> None:
        if reset:
            self.previous[source] = records
        bar = self._bars.pop(source, None)
        if bar is not None:
            bar.update(records)
            bar.close(final=True)

    def poll(self) -> None:
        for c in self.clients:
            sess = c.session
            src = sess.source
            bar = self._bars.get(src)
            state = sess.state.value
            if state in ("negotiating", "waiting", "receiving"):
                if bar is None:
                    bar = self._bars[src] = TaskProgress(
                        f"{src}: sync", json_lines=self.json, estimate=self.previous.get(src)
                    )
                if state != "receiving":
                    if bar.stage_name != "waiting":
                        bar.stage("waiting", unit="")  # for the Cache Response
                elif bar.stage_name != "receiving":
                    bar.stage("receiving", unit="records", done=sess.pending_records)
                else:
                    bar.update(sess.pending_records)
            elif bar is not None:  # ended without a sync (connection lost, error)
                bar.close()
                del self._bars[src]

    async def run(self) -> None:
        try:
            while True:
                self.poll()
                await asyncio.sleep(self.POLL)
        finally:
            self.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
