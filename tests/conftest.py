"""Shared test helpers: real peers (started and stopped by PID), CI rules, shared data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.procs import free_port, port_listening, stop_child

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_data() -> Path:
    """../shared/data beside the checkout (CI has it); ROV_SHARED_DATA overrides."""
    return Path(os.environ.get("ROV_SHARED_DATA", REPO.parent / "shared" / "data"))


def need_shared(rel: str) -> Path:
    """A file from ../shared/data: fails under CI=true when absent, skips (saying so) elsewhere."""
    p = shared_data() / rel
    if not p.exists():
        msg = f"large-data test needs {p} (../shared/data beside the checkout)"
        if IN_CI:
            pytest.fail(msg + " - missing under CI=true")
        pytest.skip(msg + " - skipped: not present on this machine")
    return p


def need_tool(name: str) -> str:
    """Path of a peer binary: fails under CI=true when missing (a missing install step must
    not hide behind a skip), skips elsewhere."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        msg = (
            f"{name} is not installed "
            "(Debian: stayrtr / rtr-tools / bird2 / frr frr-rpki-rtrlib / gobgpd)"
        )
        if IN_CI:
            pytest.fail(msg + " - required under CI=true")
        pytest.skip(msg)
    return path


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


@pytest.fixture
def stayrtr(tmp_path):
    started: list[StayRTR] = []

    def start(vrp_file: Path, **kw) -> StayRTR:
        s = StayRTR(vrp_file, tmp_path, **kw)
        started.append(s)
        return s.start()

    yield start
    for s in reversed(started):
        s.stop()


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``rov-router ARGS`` (this checkout's package) and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "rov_router.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
