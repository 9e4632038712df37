"""`pip install .` (a wheel, not -e) gives a working `lab --list` and `demo`: the scenarios
and the demo data ship inside the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.env import REPO

pytestmark = pytest.mark.interop


def test_a_venv_with_only_the_wheel_lists_the_labs_and_runs_the_demo(tmp_path):
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src = tmp_path / "src"
    shutil.copytree(
        REPO, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS", "LINES")}
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("rov_router-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    inst = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert inst.returncode == 0, inst.stderr[-3000:]
    # run outside the checkout, without this checkout on the path
    env["COLUMNS"] = "140"
    cli = venv / "bin" / "rov-router"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(cli), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )

    where = run("--version")
    assert where.returncode == 0, where.stderr
    listed = run("lab", "--list")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert len(names) >= 8 and "origin-hijack" in names and "youtube-pakistan-2008" in names
    demo = run("demo", "--table")
    assert demo.returncode == 0, demo.stderr
    assert "synced 7 VRPs and 2 ASPA records over RTR v2" in demo.stdout
    assert "5 valid, 6 invalid (dropped), 1 not-found" in demo.stdout
    # the scenario's own data file (an MRT extract) is inside the package too
    yt = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from rov_router.resources import shipped; import rov_router; "
            "print(rov_router.__file__); "
            "print((shipped('topologies') / 'data/youtube-pakistan-2008-as3277.mrt.gz').is_file())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert yt.stdout.split() == [
        str(
            venv
            / "lib"
            / f"python{sys.version_info.major}.{sys.version_info.minor}"
            / "site-packages"
            / "rov_router"
            / "__init__.py"
        ),
        "True",
    ], yt
