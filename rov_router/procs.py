"""Child-process and loopback-port helpers shared by tests, benchmarks and labs.

Children are stopped by their PID (never by name): SIGTERM, a grace period, then SIGKILL.  A
child started in its own session (``start_new_session=True``) is stopped as a process group,
which also catches what it started (e.g. a command run under ``/usr/bin/time``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port``, read from /proc/net/tcp so the listener
    sees no probe connection (StayRTR logs every connection it accepts)."""
    if ":" in host:
        table, want = "/proc/net/tcp6", f":{port:04X}"
    else:
        a, b, c, d = (int(x) for x in host.split("."))
        table, want = "/proc/net/tcp", f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}"
    try:
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and (
                    cols[1] == want or (want[0] == ":" and cols[1].endswith(want))
                ):
                    return True
    except OSError:
        pass
    return False


def stop_child(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a child we started, by PID (its process group when it leads one)."""
    if proc.poll() is not None:
        return
    try:
        group = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    send(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(5)
