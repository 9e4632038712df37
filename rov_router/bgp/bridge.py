"""The ExaBGP process entry: a thin bridge between ExaBGP's process API and rov-router.

    process rov-router {
        run /usr/bin/python3 -m rov_router.bgp.bridge /run/rov-router/exabgp.sock;
        encoder json;
    }

* Every line ExaBGP writes to our stdin is relayed to rov-router over a Unix socket, and every
  line rov-router sends back is written to stdout and flushed (a command).
* stdin is read by its own thread into an in-memory queue and **never waits for rov-router**:
  a process that stops reading makes ExaBGP block, miss keepalives and drop every BGP session
  (its pipe write blocks a single-threaded daemon).  So a slow redraw or a long revalidation in rov-router costs memory here,
  never a session.
* Nothing but commands is ever written to stdout; diagnostics go to stderr.
* The bridge dies with ExaBGP (``PR_SET_PDEATHSIG``).  With ``--exit-with-router`` (the
  configurations rov-router generates for its own ExaBGP) it also ends that ExaBGP when the
  socket to rov-router closes, so nothing of a router that was killed keeps running.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import sys
import threading
import time


def _connect(path: str, timeout: float = 30.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                raise SystemExit(f"rov-router bridge: cannot connect to {path}: {e}") from None
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    exit_with_router = "--exit-with-router" in args
    args = [a for a in args if a != "--exit-with-router"]
    path = args[0] if args else os.environ.get("ROV_ROUTER_SOCKET", "")
    if not path:
        print("usage: python -m rov_router.bgp.bridge [--exit-with-router] SOCKET", file=sys.stderr)
        return 2
    from ..procs import set_parent_death_signal

    exabgp = os.getppid()
    set_parent_death_signal(signal.SIGTERM)

    def router_gone() -> None:
        if exit_with_router and os.getppid() == exabgp:
            os.kill(exabgp, signal.SIGTERM)  # our ExaBGP: it must not outlive rov-router
        os._exit(0)

    try:
        sock = _connect(path)
    except SystemExit:
        if exit_with_router:
            with contextlib.suppress(OSError):
                os.kill(exabgp, signal.SIGTERM)
        raise
    queue: collections.deque[bytes | None] = collections.deque()
    ready = threading.Condition()
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer

    def read_stdin() -> None:
        while True:
            line = stdin.readline()
            with ready:
                queue.append(line or None)
                ready.notify()
            if not line:
                return

    def to_router() -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                batch = list(queue)
                queue.clear()
            end = None in batch
            data = b"".join(x for x in batch if x)
            try:
                if data:
                    sock.sendall(data)
                if end:
                    sock.shutdown(socket.SHUT_WR)
                    return
            except OSError:
                router_gone()

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    threading.Thread(target=to_router, name="to-router", daemon=True).start()
    with sock.makefile("rb") as commands:
        try:
            for line in commands:
                stdout.write(line if line.endswith(b"\n") else line + b"\n")
                stdout.flush()
        except OSError:
            pass
    router_gone()  # the socket closed: rov-router stopped or died
    return 0


if __name__ == "__main__":
    sys.exit(main())
