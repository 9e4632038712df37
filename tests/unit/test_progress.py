"""Progress of long tasks without a terminal: a periodic plain line or JSON line on stderr,
never on stdout; stages with their own units; an RTR sync's estimate from the previous sync."""

from __future__ import annotations

import json
from types import SimpleNamespace

from rov_router.ui.progress import RTRProgress, TaskProgress, load_stages


def test_plain_lines_carry_done_total_rate_and_eta(capsys):
    p = TaskProgress("replay", total=1000, unit="prefixes", interval=0.0, terminal=False)
    p.update(250)
    p.close(final=True)
    cap = capsys.readouterr()
    err = cap.err.splitlines()
    assert err[0].startswith("replay: 250/1,000 prefixes, ") and "ETA" in err[0], err
    assert len(err) == 2 and cap.out == ""


def test_json_lines_go_to_stderr_and_stay_quiet_between_intervals(capsys):
    p = TaskProgress("sync", json_lines=True, interval=3600, terminal=False)
    for i in range(100):
        p.update(i)  # within the interval: nothing printed
    p.close(final=True)  # a task shorter than the interval ends silently too
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    p = TaskProgress("sync", json_lines=True, interval=0.0, terminal=False)
    p.update(7)
    p.close(final=True)
    cap = capsys.readouterr()
    docs = [json.loads(x) for x in cap.err.splitlines()]
    assert cap.out == ""
    assert [d["event"] for d in docs] == ["progress", "progress_done"]
    assert docs[-1]["task"] == "sync" and docs[-1]["done"] == 7


def test_file_loading_stages_bytes_then_entries(capsys):
    p = TaskProgress("cache: loading x.json", interval=0.0, terminal=False)
    cb = load_stages(p)
    cb("reading", 500_000, 2_000_000)
    cb("parsing", 0, None)
    cb("entries", 16384, 424_223)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("cache: loading x.json: reading 0.5/2.0 MB, "), err
    assert " MB/s" in err[0]
    assert err[1].startswith("cache: loading x.json: parsing ("), err
    assert err[2].startswith("cache: loading x.json: entries 16,384/424,223 entries"), err


def test_rtr_sync_uses_the_previous_sync_as_estimate(capsys):
    sess = SimpleNamespace(
        source="c1", state=SimpleNamespace(value="receiving"), pending_records=1000
    )
    prog = RTRProgress([SimpleNamespace(session=sess)])
    prog.poll()
    bar = prog._bars["c1"]
    bar.interval = 0.0
    sess.pending_records = 2000
    prog.poll()
    assert "sync: receiving 2,000 records, " in capsys.readouterr().err  # no total: none known
    prog.synced("c1", 430_870, True)
    sess.pending_records = 100_000
    prog.poll()
    bar = prog._bars["c1"]
    bar.interval = 0.0
    sess.pending_records = 200_000
    prog.poll()
    line = capsys.readouterr().err.splitlines()[-1]
    assert "receiving 200,000/~430,870 records" in line and "ETA" in line, line
    sess.state.value = "established"  # the connection ended without End of Data
    prog.poll()
    assert prog._bars == {}
