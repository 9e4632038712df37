"""Progress of long tasks (an RTR sync, loading a VRP file, replaying an MRT file).

On a terminal: a rich progress bar on stderr (done / total when known, rate, ETA).  Otherwise a
plain line on stderr every ``interval`` seconds, or with ``json=True`` a
``{"event": "progress", ...}`` line on stdout, so logs and pipelines see it too."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class TaskProgress:
    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "records",
        json_lines: bool = False,
        interval: float = 2.0,
        terminal: bool | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.json, self.interval = json_lines, interval
        self.done = 0
        self.start = self._last = time.monotonic()
        self._rich: Any = None
        self._task: Any = None
        tty = sys.stderr.isatty() if terminal is None else terminal
        if tty and not json_lines:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._rich = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._rich.start()
            self._task = self._rich.add_task(label, total=total, rate="")

    def rate(self) -> float:
        return self.done / max(1e-9, time.monotonic() - self.start)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self._rich is not None:
            self._rich.update(
                self._task,
                completed=done,
                total=self.total,
                rate=f"{self.rate():,.0f} {self.unit}/s",
            )
        elif now - self._last >= self.interval:
            self._last = now
            self._emit("progress")

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def line(self) -> str:
        of = f"/{self.total:,}" if self.total else ""
        eta = ""
        if self.total and self.done and self.done < self.total:
            eta = f", ETA {(self.total - self.done) / max(self.rate(), 1e-9):.0f} s"
        return (
            f"{self.label}: {self.done:,}{of} {self.unit} "
            f"({self.rate():,.0f}/s, {time.monotonic() - self.start:.0f} s{eta})"
        )

    def _emit(self, event: str) -> None:
        if self.json:
            doc = {
                "event": event,
                "task": self.label,
                "done": self.done,
                "total": self.total,
                "rate": round(self.rate(), 1),
                "elapsed": round(time.monotonic() - self.start, 2),
            }
            print(json.dumps(doc), flush=True)
        else:
            print(self.line(), file=sys.stderr, flush=True)

    def close(self, *, final: bool = False) -> None:
        """Stop the bar; ``final`` prints the closing figures in plain / JSON mode."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif final:
            self._emit("progress_done")
