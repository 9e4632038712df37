"""Child-process and loopback-port helpers shared by tests, benchmarks and labs.

Children are stopped by their PID (never by name): SIGTERM, a grace period, then SIGKILL.  A
child started in its own session (``start_new_session=True``) is stopped as a process group,
which also catches what it started (e.g. a command run under ``/usr/bin/time``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
try:  # resolved here, never after a fork (no dlopen in a preexec_fn)
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


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


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux
    ``PR_SET_PDEATHSIG``); True when that could be arranged."""
    if _prctl is None:
        return False
    return _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when the process
    starting it dies, even by SIGKILL, so it never outlives us as an orphan.  (The signal
    follows the *thread* that forks: start such children from the main thread.)"""
    parent = os.getpid()

    def preexec() -> None:
        set_parent_death_signal(sig)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


_tty_at_start: bool | None = None


def _tty_usable() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def remember_terminal() -> None:
    """Note whether we start with a controlling terminal (call once, early)."""
    global _tty_at_start
    _tty_at_start = _tty_usable()


def terminal_gone() -> bool:
    """True when the process started with a controlling terminal that is gone now (the
    terminal was closed: tmux kill-session, a closed ssh connection, a closed window).  Used
    on SIGHUP, which daemons take as "reload": a hung-up terminal means "exit" instead."""
    if _tty_at_start is None:
        return False
    if not _tty_at_start:
        return False
    return not _tty_usable()
