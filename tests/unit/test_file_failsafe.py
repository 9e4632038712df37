"""Serving a VRP file fails safe: an empty or half-written file never replaces the served set,
and a reload that withdraws most of it is held back until confirmed."""

from __future__ import annotations

import json
import os

import pytest

from rov_router.rpki.vrp import VRPFileError, load_vrp_file
from rov_router.rtr.cache import CacheState
from rov_router.rtr.server import FileCache, FileSource
from tests.support.env import DATA


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def small_doc() -> dict:
    return json.loads((DATA / "small_vrps.json").read_text())


def touch(path, text: str, bump: int) -> None:
    """Write ``text`` and move the mtime forward (the test runs faster than mtime granularity)."""
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def served(tmp_path, **kw):
    f = tmp_path / "vrps.json"
    f.write_text(json.dumps(small_doc()))
    msgs: list[tuple[str, str]] = []
    clock = Clock()
    cache = CacheState()
    files = FileCache(
        cache,
        FileSource(f),
        on_reload=lambda lvl, m: msgs.append((lvl, m)),
        clock=clock,
        **kw,
    )
    assert files.reload(force=True) and len(cache.vrps) == 37
    return f, cache, files, msgs, clock


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("vrps.json", b"", "empty (0 bytes)"),
        ("vrps.csv", b"  \n\n\t\n", "empty (6 bytes, all whitespace)"),
        ("vrps.csv", b"ASN,IP Prefix,Max Length,Trust Anchor\n", "no VRPs"),
        ("vrps.csv", b"# nothing here yet\n", "no VRPs"),
    ],
)
def test_empty_file_is_an_error_not_an_empty_set(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(VRPFileError) as e:
        load_vrp_file(p)
    assert str(e.value) == f"{p}: {reason}" or str(e.value).startswith(f"{p}: {reason}")


def test_all_expired_is_refused_but_an_explicit_empty_json_list_is_a_set(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(
        json.dumps({"roas": [{"prefix": "10.0.0.0/8", "maxLength": 8, "asn": 1, "expires": 1}]})
    )
    with pytest.raises(VRPFileError, match="all 1 VRPs have expired"):
        load_vrp_file(p)
    assert len(load_vrp_file(p, ignore_expires=True).vrps) == 1
    e = tmp_path / "e.json"
    e.write_text('{"roas": []}')
    assert load_vrp_file(e).vrps == set()


@pytest.mark.parametrize("content", ["", "   \n", "prefix,maxLength,asn\n"])
def test_truncated_file_keeps_serving_the_last_good_set(tmp_path, content):
    f, cache, files, msgs, _clock = served(tmp_path, settle=0)
    touch(f, content, 1)
    assert not files.reload()
    assert len(cache.vrps) == 37 and cache.serial == 0
    lvl, msg = msgs[-1]
    assert lvl == "error" and msg.startswith(f"{f}: ") and msg.endswith("; still serving serial 0")
    if content == "":
        assert msg == f"{f}: empty (0 bytes); still serving serial 0"


def test_empty_file_at_start_serves_nothing(tmp_path):
    f = tmp_path / "vrps.json"
    f.write_text("")
    cache = CacheState()
    files = FileCache(cache, FileSource(f), on_reload=lambda *a: None)
    assert not files.reload(force=True)
    assert not cache.has_data and files.last_error == f"{f}: empty (0 bytes)"


def test_a_changed_file_is_read_only_once_settled(tmp_path):
    f, cache, files, msgs, clock = served(tmp_path, settle=0.5)
    doc = small_doc()
    doc["roas"] = doc["roas"][:30]
    touch(f, json.dumps(doc)[:100], 1)  # half written
    assert not files.reload() and cache.serial == 0  # just seen: not read yet
    clock.t += 0.3
    touch(f, json.dumps(doc), 2)  # the writer finishes: size and mtime change again
    assert not files.reload() and cache.serial == 0
    clock.t += 0.3
    assert not files.reload() and cache.serial == 0  # stable for 0.3 s only
    clock.t += 0.3
    assert files.reload() and cache.serial == 1
    assert cache.vrps == frozenset(load_vrp_file(f).vrps) and len(cache.vrps) < 37
    assert not any(lvl == "error" for lvl, _ in msgs)  # the half file was never parsed


def test_shrink_guard_holds_back_then_file_change_or_confirm(tmp_path):
    f, cache, files, msgs, _clock = served(tmp_path, settle=0)
    doc = small_doc()
    doc["roas"] = doc["roas"][:10]  # would withdraw 28 of 37 VRPs (76 %: one entry is a duplicate)
    touch(f, json.dumps(doc), 1)
    assert not files.reload()
    assert len(cache.vrps) == 37 and cache.serial == 0 and files.held is not None
    lvl, msg = msgs[-1]
    assert lvl == "error" and "HELD BACK" in msg and "withdraw 28 of the 37" in msg
    assert "still serving serial 0" in msg and "SIGUSR2" in msg
    assert not files.reload()  # unchanged file: still held, not re-read
    # the file changes again to a sane content: that is served, the held set is dropped
    doc = small_doc()
    doc["roas"] = doc["roas"][:25]
    touch(f, json.dumps(doc), 2)
    assert files.reload() and files.held is None and cache.serial == 1
    # a big shrink again, confirmed by the operator
    doc["roas"] = doc["roas"][:2]
    touch(f, json.dumps(doc), 3)
    assert not files.reload() and files.held is not None
    assert files.confirm() and cache.serial == 2
    assert cache.vrps == frozenset(load_vrp_file(f).vrps) and len(cache.vrps) < 3
    assert "confirmed" in msgs[-2][1]


def test_max_shrink_one_turns_the_guard_off(tmp_path):
    f, cache, files, _msgs, _clock = served(tmp_path, settle=0, max_shrink=1.0)
    touch(f, '{"roas": []}', 1)  # an explicit empty set: allowed when the guard is off
    assert files.reload() and cache.vrps == frozenset()


def test_reload_keeps_the_served_set_out_of_the_collector(tmp_path):
    """A reload builds the new set with the cyclic collector off and freezes what it serves
    (VRP tuples are never untracked by CPython, so every full pass would walk them); the
    collector is back on afterwards, also when the file is refused."""
    import gc

    gc.unfreeze()
    f, cache, files, msgs, _clock = served(tmp_path)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    assert frozen >= len(cache.vrps), frozen
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(v) in tracked for v in cache.vrps)
    touch(f, "", 1)
    assert not files.reload(force=True) and "empty" in msgs[-1][1]
    assert gc.isenabled() and len(cache.vrps) == 37
    gc.unfreeze()


def test_a_reloaded_file_publishes_exactly_its_difference(tmp_path):
    """The reload works the withdrawn VRPs out once (for the shrink guard) and hands them to
    the cache: the delta routers get is exactly old - new and new - old."""
    f, cache, files, msgs, _clock = served(tmp_path)
    old = set(cache.vrps)
    doc = small_doc()
    gone = doc["roas"][:3]
    doc["roas"] = [*doc["roas"][3:], {"prefix": "203.0.113.0/24", "maxLength": 24, "asn": 7}]
    touch(f, json.dumps(doc), 1)
    assert files.reload(force=True)
    new = load_vrp_file(f).vrps
    (d,) = cache._history
    assert d.vrps_removed == old - new and d.vrps_added == new - old
    assert len(d.vrps_added) == 1 and 1 <= len(d.vrps_removed) <= len(gone)
    assert cache.vrps == new and "+1 -" in msgs[-1][1]
