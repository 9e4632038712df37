"""Progress of long tasks without a terminal: a periodic plain line on stderr, or JSON lines."""

from __future__ import annotations

import json

from rov_router.ui.progress import TaskProgress


def test_plain_lines_carry_done_total_rate_and_eta(capsys):
    p = TaskProgress("replay", total=1000, unit="prefixes", interval=0.0, terminal=False)
    p.update(250)
    p.close(final=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("replay: 250/1,000 prefixes (") and "ETA" in err[0], err
    assert len(err) == 2


def test_json_lines_and_quiet_between_intervals(capsys):
    p = TaskProgress("sync", json_lines=True, interval=3600, terminal=False)
    for i in range(100):
        p.update(i)  # within the interval: nothing printed
    p.close(final=True)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    doc = json.loads(out[0])
    assert doc["event"] == "progress_done" and doc["task"] == "sync" and doc["done"] == 99
