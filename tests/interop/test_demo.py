"""The README's main job: `rov-router demo` (embedded cache -> RTR -> verdicts)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support.env import run_cli

pytestmark = pytest.mark.interop


def test_demo_runs_over_rtr_and_explains_each_verdict():
    r = run_cli("demo", "--table", "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {(x["prefix"], x["origin"]): x for x in map(json.loads, r.stdout.splitlines())}
    states = [x["state"] for x in rows.values()]
    assert (states.count("valid"), states.count("invalid"), states.count("not-found")) == (5, 6, 1)
    hijack = rows[("208.65.153.0/24", 17557)]
    assert hijack["state"] == "invalid"
    assert hijack["reason"] == (
        "VRP 208.65.152.0/22-22 AS36561 covers it; origin AS17557 does not match"
    )
    assert "longer than maxLength 22" in rows[("208.65.153.0/25", 36561)]["reason"]
    assert rows[("192.0.2.0/26", 64496)]["state"] == "valid"  # forged origin, loose maxLength
    assert rows[("2606:4700::/32", None)]["state"] == "invalid"  # AS_SET


def test_demo_table_in_a_terminal():
    r = subprocess.run(
        [sys.executable, "-m", "rov_router.cli", "demo", "--table"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "140", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert "synced 7 VRPs and 2 ASPA records over RTR v2" in r.stdout
    assert "5 valid, 6 invalid (dropped), 1 not-found" in r.stdout


def test_demo_default_is_the_origin_hijack_lab_without_a_terminal():
    r = run_cli("demo", "--check", timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "step 2/3: The hijacker announces the same prefix as its own" in r.stdout
    assert "ok: 192.0.2.0/24 from AS64666 is invalid and dropped" in r.stdout
    assert r.stdout.rstrip().endswith("origin-hijack: all 7 expected outcomes held in 3 steps")
    # the closing summary is taken before the sessions are torn down, not after (0 routes)
    assert re.search(r"summary: [1-9]\d* routes", r.stdout), r.stdout[-2000:]
