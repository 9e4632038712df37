"""Where things are (checkout, test data, ../shared/data), the CI rules for peers and large
data (fail under CI=true, skip elsewhere), and running the CLI of this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
#: the small hand-made VRP + ASPA file most tests serve
SMALL = DATA / "small_vrps.json"
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


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``rov-router ARGS`` (this checkout's package) and capture its text output."""
    return subprocess.run(
        [sys.executable, "-m", "rov_router.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
