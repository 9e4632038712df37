"""``python tests/support/stall.py SECONDS ARGS...``: ``rov-router ARGS`` whose event loop
blocks for SECONDS on the first BGP UPDATE line, as a very slow redraw would (the stall is
injected here, by wrapping the app's line handler; the package carries no test hook)."""

from __future__ import annotations

import sys
import time

from rov_router import app as A
from rov_router.cli import main


def stall_first_update(seconds: float) -> None:
    on_line = A.App._on_line
    pending = [seconds]

    def wrapped(self, line: bytes) -> None:
        on_line(self, line)
        if pending and line.startswith(b"{") and b'"update"' in line:
            time.sleep(pending.pop())

    A.App._on_line = wrapped


if __name__ == "__main__":
    stall_first_update(float(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
