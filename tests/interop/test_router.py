"""The router over real BGP sessions on 127.0.0.x: an upstream ExaBGP speaker announces,
rov-router (with its own ExaBGP and the embedded cache) validates, and a downstream BIRD 2
receives only what the policy lets through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.env import need_tool
from tests.support.lab import Lab

pytestmark = pytest.mark.interop


@pytest.fixture
def lab(tmp_path):
    labs: list[Lab] = []

    def make(**kw) -> Lab:
        lab = Lab(tmp_path, **kw)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.stop()


def test_downstream_gets_only_valid_and_not_found_then_follows_vrps_and_sessions(lab):
    lab = lab()
    sp = lab.start_upstream()
    lab.announce_all()
    lab.wait_bird({"192.0.2.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"})

    st = lab.state()
    by_prefix = {r["prefix"]: r for r in st["routes"]}
    assert {p: r["state"] for p, r in by_prefix.items()} == {
        "192.0.2.0/24": "valid",
        "198.51.100.0/24": "invalid",
        "203.0.113.0/27": "invalid",
        "11.0.0.0/8": "not-found",
        "2001:db8:abcd::/48": "valid",
        "2001:db8:abcd::/49": "invalid",
        "2001:db9::/32": "not-found",
    }
    assert by_prefix["198.51.100.0/24"]["reason"] == (
        "VRP 198.51.100.0/24-24 AS64497 covers it; origin AS64499 does not match"
    )
    assert not by_prefix["198.51.100.0/24"]["accepted"]  # dropped, still visible
    (up,) = [n for n in st["neighbors"] if n["address"] == "127.0.0.2"]
    assert (up["received"], up["accepted"], up["dropped"]) == (7, 4, 3)

    # VRP changes through the embedded cache: 198.51.100.0/24 now authorises AS64499 (its
    # route becomes valid and is announced); 192.0.2.0/24 moves to AS64511 (withdrawn)
    doc = json.loads(lab.vrps.read_text())
    for r in doc["roas"]:
        if r["prefix"] == "198.51.100.0/24":
            r["asn"] = 64499
        if r["prefix"] == "192.0.2.0/24":
            r["asn"] = 64511
    lab.vrps.write_text(json.dumps(doc))
    lab.wait_bird({"198.51.100.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"})
    changes = [e for e in lab.events() if e.get("event") == "route_state"]
    assert {(e["prefix"], e["from"], e["state"]) for e in changes} == {
        ("198.51.100.0/24", "invalid", "valid"),
        ("192.0.2.0/24", "valid", "invalid"),
    }
    rpki = [e for e in lab.events() if e.get("event") == "rpki"]
    assert rpki[-1]["serial"] == 1 and rpki[-1]["revalidated"] >= 2

    # an explicit withdraw upstream reaches downstream
    assert sp.command("withdraw route 11.0.0.0/8") == "done"
    lab.wait_bird({"198.51.100.0/24", "2001:db8:abcd::/48", "2001:db9::/32"})

    # the upstream session goes down: everything it contributed is withdrawn downstream
    sp.stop()
    lab.speaker = None
    lab.wait_bird(set())
    st = lab.state()
    assert [n["state"] for n in st["neighbors"] if n["address"] == "127.0.0.2"] == ["down"]
    assert st["routes"] == []


def test_bridge_keeps_reading_while_the_router_is_busy(lab):
    """rov-router blocks its loop for 15 s on the first UPDATE (as a very slow redraw would)
    while a burst of 40,000 routes (several MB of JSON, far beyond the 64 KiB pipe) arrives.
    With hold time 9 s a stalled reader would make ExaBGP miss keepalives and drop the session
    (ExaBGP blocks writing into the full pipe and sends no keepalives); through the bridge it survives and every route arrives."""
    lab = lab(hold=9, stall_first_update=15)
    sp = lab.start_upstream()
    n = 40_000
    prefixes = [f"10.{i // 256}.{i % 256}.0/24" for i in range(n)]
    t0 = time.monotonic()
    for i in range(0, n, 500):
        cmd = (
            f"announce attributes next-hop 127.0.0.2 as-path [ 65001 {64512 + i // 500} ] "
            f"nlri {' '.join(prefixes[i : i + 500])}"
        )
        assert sp.command(cmd, timeout=60) == "done"
    deadline = time.monotonic() + 120
    received = 0
    while time.monotonic() < deadline:
        st = lab.state() if time.monotonic() - t0 > 16 else None
        if st:
            (up,) = [x for x in st["neighbors"] if x["address"] == "127.0.0.2"]
            received = up["received"]
            if received == n:
                break
        time.sleep(1)
    assert received == n
    assert time.monotonic() - t0 > 15  # the stall really happened
    downs = [e for e in lab.events() if e.get("event") == "neighbor" and e["state"] == "down"]
    assert downs == []
    states = [m["neighbor"]["state"] for m in sp.messages("state")]
    # before the router's ExaBGP listened, the speaker's dials failed ('down'); after 'up' none
    assert "down" not in states[states.index("up") :], states


def test_live_table_in_a_real_terminal(lab, tmp_path):
    """rov-router run --live in tmux: the screen shows the RPKI source, the neighbors and the
    routes with their verdicts, the dropped invalid one with its reason."""
    tmux = need_tool("tmux")
    lab = lab(start_router=False)
    sess = f"rov{os.getpid()}"
    # env -u: pytest's COLUMNS / LINES would override the terminal's real size
    cmd = (
        f"cd {Path.cwd()} && env -u COLUMNS -u LINES {sys.executable} -m rov_router.cli run "
        f"--config {tmp_path / 'router.toml'} --live; sleep 5"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", sess, "-x", "200", "-y", "50", cmd], check=True
    )
    try:
        sp = lab.start_upstream()
        lab.announce_all()
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
            ).stdout
            if "198.51.100.0/24" in screen and "2001:db9::/32" in screen:
                break
            time.sleep(0.3)
        assert "RPKI" in screen, screen
        assert "vrps.json" in screen and "BGP neighbors of AS65000" in screen
        (row,) = [x for x in screen.splitlines() if "198.51.100.0/24" in x]
        assert "invalid" in row and "DROPPED" in row and "AS64499" in row
        assert "origin AS64499 does not match" in screen
        (row,) = [x for x in screen.splitlines() if "11.0.0.0/8" in x]
        assert "not-found" in row and "accept" in row
        # 'i' filters to invalid routes
        subprocess.run([tmux, "send-keys", "-t", sess, "i"], check=True)
        time.sleep(1.0)
        screen = subprocess.run(
            [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
        ).stdout
        assert "[invalid]" in screen and "11.0.0.0/8" not in screen
        assert "203.0.113.0/27" in screen
        sp.command("withdraw route 203.0.113.0/27")
        subprocess.run([tmux, "send-keys", "-t", sess, "q"], check=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = subprocess.run([tmux, "has-session", "-t", sess], capture_output=True)
            if alive.returncode != 0:
                break
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
            ).stdout
            if "summary:" in screen:
                break
            time.sleep(0.2)
        assert "summary:" in screen
    finally:
        subprocess.run([tmux, "kill-session", "-t", sess], capture_output=True)


def test_truncated_vrp_file_never_lets_the_invalid_hijack_through(lab):
    """`: > vrps.json` while `run` serves it: the embedded cache refuses the empty file, keeps
    the last good VRPs, and BIRD downstream keeps not carrying the invalid routes."""
    lab = lab()
    lab.start_upstream()
    lab.announce_all()
    good = {"192.0.2.0/24", "11.0.0.0/8", "2001:db8:abcd::/48", "2001:db9::/32"}
    lab.wait_bird(good)
    with open(lab.vrps, "w"):
        pass  # what json.dump into an opened file leaves behind for a moment
    deadline = time.monotonic() + 20
    while not any("empty (0 bytes)" in e.get("message", "") for e in lab.events()):
        assert time.monotonic() < deadline, lab.out.read_text()[-3000:]
        time.sleep(0.1)
    (ev,) = [e for e in lab.events() if "empty (0 bytes)" in e.get("message", "")]
    assert ev["event"] == "cache" and ev["level"] == "error"
    assert ev["message"] == f"{lab.vrps}: empty (0 bytes); still serving serial 0"
    for _ in range(10):  # a few seconds: the hijack (198.51.100.0/24 from AS64499) stays out
        assert lab.bird_routes() == good
        time.sleep(0.3)
    st = lab.state()
    assert {r["prefix"]: r["state"] for r in st["routes"]}["198.51.100.0/24"] == "invalid"
