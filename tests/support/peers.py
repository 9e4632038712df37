"""Real RTR peers for the interop tests, each started and stopped by PID: a private StayRTR, our
own cache as a subprocess; a one-shot sync of our client; RTRlib's verdict codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from rov_router.procs import free_port, port_listening, stop_child
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP, load_vrp_file
from rov_router.rtr.client import RTRClient
from tests.support.env import need_tool

#: rpki-rov's answer codes
CODES = {"0": "valid", "1": "not-found", "2": "invalid"}


class StayRTR:
    """A private StayRTR serving one JSON file on 127.0.0.1."""

    def __init__(self, vrp_file: Path, workdir: Path, *, protocol: int = 2) -> None:
        self.binary = need_tool("stayrtr")
        self.file = vrp_file
        self.port = free_port()
        self.log = workdir / f"stayrtr-{self.port}.log"
        self.protocol = protocol
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> StayRTR:
        self._logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-bind",
                f"127.0.0.1:{self.port}",
                "-cache",
                str(self.file),
                "-checktime=false",
                "-refresh",
                "86400",
                "-metrics.addr",
                "",
                "-protocol",
                str(self.protocol),
                "-loglevel",
                "info",
            ],
            stdout=self._logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stayrtr exited: {self.log.read_text()[-2000:]}")
            if port_listening(self.port) and b"New update" in self.log.read_bytes():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"stayrtr not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def reload(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGHUP)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc)
        if getattr(self, "_logf", None):
            self._logf.close()


class CacheProc:
    def __init__(self, vrps: Path, tmp: Path, *extra: str) -> None:
        self.port = free_port()
        self.log = tmp / f"cache-{self.port}.log"
        self.vrps = vrps
        self._logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rov_router.cli",
                "cache",
                "--vrps",
                str(vrps),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--notify-interval",
                "0",
                "--poll",
                "0.2",
                "--session-file",
                str(tmp / "session"),
                "--json",
                "-v",
                *extra,
            ],
            stdout=self._logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not port_listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cache did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def events(self) -> list[dict]:
        out = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_for(self, pattern: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events():
                if re.search(pattern, ev.get("message", "")):
                    return ev
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in cache log: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_child(self.proc)
        self._logf.close()


def sync(port: int, **kw) -> VRPStore:
    async def run():
        store = VRPStore()
        client = RTRClient("127.0.0.1", port, store, **kw)
        task = asyncio.ensure_future(client.run())
        try:
            await client.wait_synced(120)
        finally:
            client.stop()
            await task
        return store

    return asyncio.run(run())


def file_set(path) -> set[VRP]:
    return load_vrp_file(path, ignore_expires=True).vrps


class SplitCache:
    """`rov-router cache` with stdout and stderr kept apart."""

    def __init__(self, tmp: Path, vrps: Path, *extra: str, interval: str = "2") -> None:
        self.port = free_port()
        self.out, self.err = tmp / f"cache-{self.port}.out", tmp / f"cache-{self.port}.err"
        env = {**os.environ, "ROV_ROUTER_PROGRESS_INTERVAL": interval}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rov_router.cli", "cache", "--vrps", str(vrps),
                 "--listen", f"127.0.0.1:{self.port}", "--session-file", str(tmp / "session"),
                 "--json", *extra],
                stdout=out, stderr=err, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while not port_listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cache did not start: {self.err.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        stop_child(self.proc)
