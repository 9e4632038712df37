"""Every scenario in topologies/ runs over real ExaBGP speakers on loopback and its expected
outcomes hold; a wrong expectation fails with a clear message; malformed files are refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rov_router.lab.runner import Lab
from rov_router.lab.scenario import ScenarioError, load_scenario
from tests.support.env import REPO, need_tool, run_cli

pytestmark = pytest.mark.interop
TOPOLOGIES = sorted((REPO / "topologies").glob("*.toml"))


def test_at_least_the_eight_lessons_exist():
    names = {p.stem for p in TOPOLOGIES}
    assert {
        "origin-hijack",
        "subprefix-hijack",
        "forged-origin-maxlength",
        "as0-unused-space",
        "route-leak-aspa",
        "roa-misconfiguration",
        "cache-outage",
        "youtube-pakistan-2008",
    } <= names


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_scenario_passes_check(path):
    sc = load_scenario(path)
    res = asyncio.run(Lab(sc, display="quiet", speed=4.0).run())
    assert res.ok, res.first_failure()
    assert sum(len(s.step.expect) for s in res.steps) >= 3


def test_wrong_expectation_fails_naming_step_and_reason(tmp_path):
    text = (
        (REPO / "topologies" / "origin-hijack.toml")
        .read_text()
        .replace(
            '{ prefix = "192.0.2.0/24", from = 64666, verdict = "invalid", accepted = false },\n'
            '  { prefix = "192.0.2.0/24", from = 64496',
            '{ prefix = "192.0.2.0/24", from = 64666, verdict = "valid", accepted = false },\n'
            '  { prefix = "192.0.2.0/24", from = 64496',
            1,
        )
    )
    assert '"valid", accepted = false' in text
    f = tmp_path / "wrong.toml"
    f.write_text(text)
    r = run_cli("lab", str(f), "--check", "--speed", "4", "--timeout", "3", timeout=120)
    assert r.returncode == 1
    assert (
        "FAILED at step 2 'The hijacker announces the same prefix as its own': verdict is "
        "invalid: VRP 192.0.2.0/24-24 AS64496 covers it; origin AS64666 does not match"
    ) in r.stderr


@pytest.mark.parametrize(
    "edit,message",
    [
        (('relation = "peer"', 'relation = "friend"'), "as[1].relation: 'friend' is not one of"),
        (
            ('address = "127.0.0.12"', 'address = "10.0.0.12"'),
            "as[1].address: '10.0.0.12' must be a loopback",
        ),
        (
            ('action = "withdraw"', 'action = "vanish"'),
            "step[2] (The victim withdraws its route).action: 'vanish'",
        ),
        (
            ("from = 64666\nprefix", "from = 64999\nprefix"),
            "step[1] (The hijacker announces the same prefix as its own).from: AS64999 is not one",
        ),
        (
            (
                'verdict = "valid", accepted = true },\n  { at',
                'verdict = "okay", accepted = true },\n  { at',
            ),
            "step[0] (The victim announces its prefix).expect[0].verdict: 'okay'",
        ),
    ],
)
def test_malformed_scenarios_name_file_step_and_key(tmp_path, edit, message):
    text = (REPO / "topologies" / "origin-hijack.toml").read_text()
    assert edit[0] in text
    f = tmp_path / "bad.toml"
    f.write_text(text.replace(*edit, 1))
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert str(f) in str(e.value) and message in str(e.value)


def test_demo_in_a_real_terminal_shows_the_hijack_dropped_with_its_reason():
    tmux = need_tool("tmux")
    sess = f"demo{os.getpid()}"
    cmd = (
        f"cd {Path.cwd()} && env -u COLUMNS -u LINES {sys.executable} -m rov_router.cli "
        "demo; sleep 10"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", sess, "-x", "220", "-y", "60", cmd], check=True
    )
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
            ).stdout
            rows = [
                x for x in screen.splitlines() if x.startswith("192.0.2.0/24") and "AS64666" in x
            ]
            if "step 2/3" in screen and rows and "DROPPED" in rows[0]:
                break
            time.sleep(0.2)
        rows = [x for x in screen.splitlines() if x.startswith("192.0.2.0/24") and "AS64666" in x]
        assert rows, screen
        assert "invalid" in rows[0] and "DROPPED" in rows[0]
        assert "origin AS64666 does not match" in rows[0]
        assert "The hijacker announces the same prefix as its own" in screen  # the narration
    finally:
        subprocess.run([tmux, "kill-session", "-t", sess], capture_output=True)
