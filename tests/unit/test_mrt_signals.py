"""Reading MRT must not change how the process handles SIGPIPE.

mrtparse sets SIGPIPE to its default action when imported; a router (``run``, ``lab``,
``replay``) that then writes to a pipe whose reader has gone (an ExaBGP child that has just
stopped) was killed on the spot, exit status 141, with no message.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.env import REPO

MRT = REPO / "topologies" / "data" / "youtube-pakistan-2008-as3277.mrt.gz"

SCRIPT = f"""
import os, signal
from rov_router.bgp.mrt import read_updates
n = sum(1 for _ in read_updates({str(MRT)!r}))
assert n > 0, n
print("disposition", signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN)
r, w = os.pipe()
os.close(r)
try:
    os.write(w, b"x")
except BrokenPipeError:
    print("broken pipe raised")
"""


def test_reading_mrt_keeps_sigpipe_ignored_and_a_closed_pipe_is_an_error():
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert p.stdout.split("\n")[:2] == ["disposition True", "broken pipe raised"], p.stdout
