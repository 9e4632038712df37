"""The live table designed for 80 columns: in tmux at 80x24 nothing important is cut (neighbor
addresses, AS numbers, the reason on its own line) and the display fits the screen; at 200x50
it uses the room (more columns, the reason inline)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.ui.live import Col, fit
from tests.support.env import need_tool

pytestmark = pytest.mark.interop


def _demo_screen(cols: int, rows: int) -> str:
    tmux = need_tool("tmux")
    sess = f"layout{os.getpid()}x{cols}"
    cmd = (
        f"cd {Path.cwd()} && env -u COLUMNS -u LINES {sys.executable} -m rov_router.cli "
        "demo; sleep 10"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", sess, "-x", str(cols), "-y", str(rows), cmd], check=True
    )
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
            ).stdout
            if "step 3/3" in screen and "DROPPED" in screen and "origin AS64666" in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(screen)
    finally:
        subprocess.run([tmux, "kill-session", "-t", sess], capture_output=True)


def test_80x24_keeps_the_essentials_whole_and_fits_the_screen():
    screen = _demo_screen(80, 24)
    lines = screen.splitlines()
    assert lines[0].startswith("╭─ Origin hijack"), screen  # the display's top is on screen
    assert len(lines) <= 24 and all(len(x) <= 80 for x in lines)
    (hijacker,) = [x for x in lines if x.startswith("127.0.0.12 ")]
    assert "64666" in hijacker and "…" not in hijacker, screen
    i = next(i for i, x in enumerate(lines) if x.startswith("192.0.2.0/24") and "AS64666" in x)
    assert "invalid" in lines[i] and "DROPPED" in lines[i] and "127.0.0.12" in lines[i]
    # the reason, whole, on the detail line under the route
    assert "VRP 192.0.2.0/24-24 AS64496 covers it; origin AS64666 does not match" in lines[i + 1]
    assert "lab cache" in screen and "established" in screen


def test_200x50_uses_the_room():
    screen = _demo_screen(200, 50)
    lines = screen.splitlines()
    assert "BGP neighbors of AS65000" in screen
    header = next(x for x in lines if x.startswith("BGP neighbor "))
    for col in ("received", "accepted", "dropped", "advertised", "role", "policy"):
        assert col in header, header
    row = next(x for x in lines if x.startswith("192.0.2.0/24") and "AS64666" in x)
    assert "DROPPED" in row and "origin AS64666 does not match" in row  # the reason inline


def test_columns_are_chosen_by_priority_and_never_cut_below_their_width():
    cols = [Col("a", 1, 10), Col("b", 3, 10), Col("c", 2, 10)]
    rows = [["x" * 10, "y" * 10, "z" * 10]]
    assert fit(cols, rows, 21) == ([0, 2], [10, 10, 10])
    assert fit(cols, rows, 32) == ([0, 1, 2], [10, 10, 10])
    assert fit(cols, rows, 9)[0] == []


def test_lesson_shown_live_and_presenter_mode_advances_on_a_key():
    tmux = need_tool("tmux")
    sess = f"step{os.getpid()}"
    cmd = (
        f"cd {Path.cwd()} && env -u COLUMNS -u LINES {sys.executable} -m rov_router.cli "
        "demo --step; sleep 10"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", sess, "-x", "100", "-y", "30", cmd], check=True
    )

    def screen() -> str:
        return subprocess.run(
            [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
        ).stdout

    def wait_for(text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        s = ""
        while time.monotonic() < deadline:
            s = screen()
            if text in " ".join(s.split()):
                return s
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} on screen:\n{s}")

    try:
        s = wait_for("press space or Enter for step 1/3")
        # the lesson is on screen while the lab runs, not only with --check
        assert "Origin hijack: the same prefix from the wrong AS" in s
        assert "published a ROA for it" in s
        time.sleep(3)  # nothing moves without a key
        s = screen()
        assert "-- step 1/3" not in s and "AS64496 valid" not in " ".join(s.split())
        subprocess.run([tmux, "send-keys", "-t", sess, " "], check=True)
        s = wait_for("press space or Enter for step 2/3")
        assert "-- step 1/3: The victim announces its prefix" in s
        assert "Its origin matches the ROA" in s  # the step's explanation
        assert "ok: AS64510 holds 192.0.2.0/24" in s
        time.sleep(2)
        assert "step 2/3: The hijacker" not in screen().replace("for step 2/3", "")
        subprocess.run([tmux, "send-keys", "-t", sess, "Enter"], check=True)
        wait_for("-- step 2/3: The hijacker announces")
    finally:
        subprocess.run([tmux, "kill-session", "-t", sess], capture_output=True)
