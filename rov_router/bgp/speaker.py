"""Running ExaBGP 5 as a child process with a generated configuration, and the Unix-socket end
of the bridge (:mod:`rov_router.bgp.bridge`) that carries its process API.

Used for the router's own ExaBGP and for lab / test speakers alike.  Settings, as ExaBGP 5.0.15
behaves: ``adj-rib-in false`` (the default keeps every received route: about 10x the memory,
and the router keeps its own Adj-RIB-In), explicit ``ipv4 unicast; ipv6 unicast;`` families
(without them a neighbor offers every family ExaBGP knows), acks on, ``cli = false``, the daemon
user set to our own account (started as root, ExaBGP becomes ``nobody`` before it forks its
processes, which then cannot write our files), logging to a file, and ``PYTHONUNBUFFERED``
removed from the child's environment (commands must be flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import importlib.metadata
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from ..procs import die_with_parent, stop_child

log = logging.getLogger("rov_router.exabgp")

#: seconds of ExaBGP output handled between two turns of the event loop (``show`` answers, the
#: web view's updates and our commands go out while a full table comes in); a time slice, not a
#: line count: one line can carry one prefix or a thousand
SLICE_SECONDS = 0.01

#: commands awaiting ExaBGP's ``done`` / ``error`` at most (each up to ``router.BATCH`` prefixes)
WINDOW = 10


@dataclass
class PeerSpec:
    """One ``neighbor`` block of a generated ExaBGP configuration."""

    address: str
    peer_as: int
    local_as: int
    router_id: str
    local_address: str
    passive: bool = True
    connect: int | None = None  # port to dial when active
    hold_time: int = 90
    adj_rib_out: bool = False
    description: str = ""


@dataclass
class SpeakerSpec:
    name: str
    peers: list[PeerSpec]
    listen: list[str] = field(default_factory=list)  # addresses ExaBGP listens on
    port: int = 179
    socket: Path | None = None  # the bridge's socket (None: no process)


def exabgp_command() -> list[str]:
    """The ExaBGP installed with rov-router, in this very environment, never whichever
    ``exabgp`` comes first in PATH: ``python -m exabgp`` through
    :mod:`rov_router.bgp.exabgp_run`, which raises its reactor's per-turn command budget."""
    if importlib.util.find_spec("exabgp") is None:
        raise FileNotFoundError(
            f"ExaBGP is not installed for {sys.executable} (pip install exabgp, in the same "
            "environment as rov-router)"
        )
    return [sys.executable, "-m", "rov_router.bgp.exabgp_run"]


def exabgp_version() -> str:
    """The version of the ExaBGP :func:`exabgp_command` runs."""
    try:
        return importlib.metadata.version("exabgp")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def render(spec: SpeakerSpec, workdir: Path) -> tuple[Path, Path]:
    """Write ``<name>.conf`` and ``<name>.env``; return their paths."""
    lines: list[str] = []
    if spec.socket is not None:
        lines += [
            "process bridge {",
            f"\trun {sys.executable} -m rov_router.bgp.bridge --exit-with-router {spec.socket};",
            "\tencoder json;",
            "}",
            "",
        ]
    for p in spec.peers:
        rid = p.router_id
        lines.append(f"neighbor {p.address} {{")
        if p.description:
            lines.append(f'\tdescription "{p.description}";')
        lines += [
            f"\trouter-id {rid};",
            f"\tlocal-address {p.local_address};",
            f"\tlocal-as {p.local_as};",
            f"\tpeer-as {p.peer_as};",
            f"\thold-time {p.hold_time};",
            "\tadj-rib-in false;",
            f"\tadj-rib-out {'true' if p.adj_rib_out else 'false'};",
        ]
        if p.passive:
            lines.append("\tpassive;")
        elif p.connect is not None:
            lines.append(f"\tconnect {p.connect};")
        lines += ["\tfamily {", "\t\tipv4 unicast;", "\t\tipv6 unicast;", "\t}"]
        if spec.socket is not None:
            lines += [
                "\tapi {",
                "\t\tprocesses [ bridge ];",
                "\t\tneighbor-changes;",
                "\t\treceive { parsed; update; open; notification; }",
                "\t}",
            ]
        lines += ["}", ""]
    conf = workdir / f"{spec.name}.conf"
    conf.write_text("\n".join(lines))
    env = workdir / f"{spec.name}.env"
    bind = " ".join(spec.listen)
    env.write_text(
        "\n".join(
            [
                "[exabgp.api]",
                "cli = false",
                "ack = true",
                "",
                "[exabgp.daemon]",
                f"user = '{getpass.getuser()}'",
                "",
                "[exabgp.log]",
                f"destination = '{workdir / (spec.name + '.log')}'",
                "level = INFO",
                "statistics = false",
                "processes = false",
                "",
                "[exabgp.tcp]",
                f"bind = '{bind}'",
                f"port = {spec.port}",
                "",
            ]
        )
    )
    return conf, env


class ExaBGP:
    """An ExaBGP child process (started and stopped by PID)."""

    def __init__(self, spec: SpeakerSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self.conf, self.env = render(spec, workdir)
        self.log = workdir / f"{spec.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        self._out = open(self.workdir / f"{self.spec.name}.stdout", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*exabgp_command(), "--env-file", str(self.env), "server", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            preexec_fn=die_with_parent(),  # never outlives us, even when we are SIGKILLed
        )
        log.info("started ExaBGP %s (pid %d)", self.spec.name, self.proc.pid)

    def reconfigure(self, spec: SpeakerSpec) -> None:
        """Rewrite the configuration and have ExaBGP reload it (SIGUSR1): neighbors added or
        removed, or whose settings changed, are started / stopped / re-established; the others
        keep their sessions and the routes announced to them (checked with ExaBGP 5.0.15)."""
        self.spec = spec
        self.conf, self.env = render(spec, self.workdir)
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGUSR1)
            log.info("ExaBGP %s: configuration reloaded (SIGUSR1)", spec.name)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None:
            stop_child(self.proc, grace=grace)
            self.proc = None
        if getattr(self, "_out", None):
            self._out.close()

    def tail(self, n: int = 30) -> str:
        out = []
        for f in (self.log, self.workdir / f"{self.spec.name}.stdout"):
            with contextlib.suppress(OSError):
                out += f.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(out)


class BridgeEnd:
    """The rov-router side of the bridge socket: lines in, commands out, a bounded window of
    commands awaiting ExaBGP's ``done`` / ``error``."""

    def __init__(
        self,
        path: Path,
        on_line: Callable[[bytes], None],
        *,
        window: int = WINDOW,
        on_connect: Callable[[bool], None] | None = None,
        slice_seconds: float = SLICE_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.path = path
        self.on_line = on_line
        self.slice_seconds = slice_seconds
        self.clock = clock
        self.yields = 0  # turns given to the loop in the middle of buffered input
        self.on_connect = on_connect
        self.window = window
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._outstanding = 0
        self._queue: list[str] = []
        self.connected = asyncio.Event()
        self.commands_sent = 0
        self.answers_ok = 0
        self.answers_error = 0
        self.lines = 0
        self._conns: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._conn, path=str(self.path), limit=64 << 20
        )

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        if self._writer is not None:  # a second bridge (respawned): the newest wins
            self._writer.close()
        self._writer = writer
        self._outstanding = 0
        self.connected.set()
        if self.on_connect is not None:
            self.on_connect(True)
        self._pump()
        clock, budget = self.clock, self.slice_seconds
        slice_end = clock() + budget
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                self.lines += 1
                if not line.startswith(b"{"):
                    text = line.strip()
                    if text in (b"done", b"error"):
                        self._outstanding = max(0, self._outstanding - 1)
                        if text == b"done":
                            self.answers_ok += 1
                        else:
                            self.answers_error += 1
                        self._pump()
                self.on_line(line)
                if clock() >= slice_end:
                    # readline() does not suspend while the buffer holds lines: after each
                    # slice give the loop (control socket, web view, our commands, RTR) a turn
                    self.yields += 1
                    await asyncio.sleep(0)
                    slice_end = clock() + budget
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            log.warning("bridge connection: %s", e)
        finally:
            if self._writer is writer:
                self._writer = None
                self.connected.clear()
                if self.on_connect is not None:
                    self.on_connect(False)

    def send(self, command: str) -> None:
        """Queue a command; at most ``window`` await an answer at any time (ExaBGP scans its whole command backlog on every tick: a flood slows it quadratically)."""
        self._queue.append(command)
        self._pump()

    @property
    def backlog(self) -> int:
        return len(self._queue) + self._outstanding

    def _pump(self) -> None:
        w = self._writer
        if w is None:
            return
        out = []
        while self._queue and self._outstanding < self.window:
            out.append(self._queue.pop(0))
            self._outstanding += 1
        if out:
            self.commands_sent += len(out)
            w.write(("\n".join(out) + "\n").encode())

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued command was answered."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.backlog and loop.time() < end:
            await asyncio.sleep(0.02)
        return not self.backlog

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._conns:  # let the reader see its EOF rather than be cancelled at loop end
            await asyncio.wait(set(self._conns), timeout=1.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def local_address_for(peer: str, configured: str | None, fallback: str) -> str:
    """The local address of a session: configured, or the router's listen address of the same
    family (``::1`` for IPv6 peers when none is given)."""
    if configured:
        return configured
    if ip_address(peer).version == 6:
        return fallback if ip_address(fallback).version == 6 else "::1"
    return fallback if ip_address(fallback).version == 4 else "127.0.0.1"
