"""Progress of the long tasks, from the real commands: `cache` loading a VRP file, `rtr --once`
syncing the 424k set from our cache, `rtr replay` of that recording.  Without a terminal the
progress is one line on stderr (JSON with --json) and stdout stays valid JSON; on a terminal
(tmux) it is a rich bar."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from rov_router.procs import free_port
from tests.support.env import DATA, REPO, need_shared, need_tool
from tests.support.peers import SplitCache as Cache

pytestmark = pytest.mark.interop

PREPDEV = "vrps/rpki-client_ripe-prepdev_20230504.json.xz"


def cli(*args: str, interval: str = "0", timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROV_ROUTER_PROGRESS_INTERVAL": interval}
    return subprocess.run(
        [sys.executable, "-m", "rov_router.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines()]  # every line must be JSON


def test_cache_loading_shows_bytes_and_entries_on_stderr(tmp_path):
    f = DATA / "small_vrps.json"
    n = len(json.loads(f.read_text())["roas"])
    c = Cache(tmp_path, f, interval="0")
    c.stop()
    out = json_lines(c.out.read_text())
    assert out and all(e["event"] != "progress" for e in out), out
    assert any("loaded" in e.get("message", "") for e in out), out
    prog = json_lines(c.err.read_text())
    assert {e["task"] for e in prog} == {f"cache: loading {f.name}"}, prog
    reading = [e for e in prog if e["stage"] == "reading"]
    assert reading and reading[-1]["done"] == reading[-1]["total"] == f.stat().st_size
    assert reading[-1]["unit"] == "bytes"
    entries = [e for e in prog if e["stage"] == "entries"]
    assert entries[-1]["done"] == entries[-1]["total"] == n, entries
    assert prog[-1]["event"] == "progress_done"


def test_rtr_once_and_replay_show_records_on_stderr(tmp_path):
    vrps = need_shared(PREPDEV)
    c = Cache(tmp_path, vrps, "--ignore-expires")
    try:
        dump = tmp_path / "rtr.dump"
        r = cli("rtr", "--cache", f"127.0.0.1:{c.port}", "--once", "--json", "--dump", str(dump))
        assert r.returncode == 0, r.stderr
        synced = [e for e in json_lines(r.stdout) if e["event"] == "synced"]
        assert len(synced) == 1 and synced[0]["vrps"] == 424_223, r.stdout
        prog = json_lines(r.stderr)
        receiving = [e for e in prog if e.get("stage") == "receiving"]
        assert receiving, r.stderr
        done = [e["done"] for e in receiving]
        assert done == sorted(done) and done[-1] == synced[0]["records"], done
        assert all(e["task"] == f"127.0.0.1:{c.port}: sync" and e["rate"] >= 0 for e in receiving)
        # plain: one line per interval on stderr, the sync's result alone on stdout
        r = cli("rtr", "--cache", f"127.0.0.1:{c.port}", "--once")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("\n") == 1 and "424223 VRPs" in r.stdout, r.stdout
        lines = re.findall(rf"127\.0\.0\.1:{c.port}: sync: receiving ([\d,]+) records", r.stderr)
        assert lines and lines[-1] == f"{synced[0]['records']:,}", r.stderr
    finally:
        c.stop()
    # the recording, replayed: bytes of the dump, the records of the transfer
    r = cli("rtr", "replay", str(dump), "--json")
    assert r.returncode == 0, r.stderr
    out = json_lines(r.stdout)
    assert out[-1]["event"] == "replayed" and out[-1]["vrps"] == 424_223, out[-1]
    prog = json_lines(r.stderr)
    assert prog[-1]["event"] == "progress_done" and prog[-1]["stage"] == "replaying"
    assert prog[-1]["done"] == prog[-1]["total"] == dump.stat().st_size, prog[-1]
    assert any(e.get("info", "").endswith("records of this transfer") for e in prog), prog


def test_cache_loading_on_a_terminal_is_a_rich_bar(tmp_path):
    vrps = need_shared(PREPDEV)
    tmux = need_tool("tmux")
    sess = f"progress{os.getpid()}"
    port = free_port()
    cmd = (
        f"cd {REPO} && env -u COLUMNS -u LINES PYTHONPATH={os.environ.get('PYTHONPATH', REPO)} "
        f"{sys.executable} -m rov_router.cli cache --vrps {vrps} --ignore-expires "
        f"--listen 127.0.0.1:{port} --session-file {tmp_path / 'session'}; sleep 30"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", sess, "-x", "120", "-y", "10", cmd], check=True
    )
    seen: set[str] = set()
    screens = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "serving" not in seen:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", sess], capture_output=True, text=True
            ).stdout
            for unit in ("kB", "MB", "entries"):  # reading the file, then its entries
                if re.search(rf"cache: loading .*━.* [\d,.]+/[\d,.]+ {unit}, ", screen):
                    seen.add(unit)
                    screens.append(screen)
            if "serving RTR" in screen:
                seen.add("serving")
                screens.append(screen)
            time.sleep(0.05)
    finally:
        subprocess.run([tmux, "kill-session", "-t", sess], capture_output=True)
    assert {"entries", "serving"} <= seen, "\n---\n".join(screens[-3:])
    assert all(len(line) <= 120 for s in screens for line in s.splitlines())
    # the bar is transient: gone once the cache serves
    assert "cache: loading" not in screens[-1], screens[-1]
    bar = next(s for s in screens if " entries, " in s)
    assert re.search(r"[\d,]+/424,223 entries, [\d,]+/s", bar), bar
