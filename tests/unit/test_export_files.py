"""`rov-router rtr --export / --data-dir`: the files follow every table change, flushes
included, and are replaced atomically."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rov_router.commands._common import atomic_write as _atomic_write
from rov_router.commands.rtr import _Reporter
from rov_router.rpki.store import VRPStore
from rov_router.rpki.vrp import VRP
from rov_router.rtr import pdu as P
from rov_router.rtr import session as S
from rov_router.rtr.client import pump

A = VRP.parse("192.0.2.0/24", 24, 64496)
B = VRP.parse("2001:db8::/32", 48, 64497)


def drive(tmp_path, cache_bytes: list[bytes], now: list[float]):
    args = argparse.Namespace(
        json=True, export=str(tmp_path / "export.json"), data_dir=str(tmp_path / "data")
    )
    store = VRPStore()
    rep = _Reporter(store, args)
    sess = S.ClientSession("c", max_version=1, clock=lambda: now[0])

    def feed(events):
        evs, _ = pump(sess, store, events)
        for ev in evs:
            if isinstance(ev, S.UpdateReady):
                rep._last_update = ev.update
            rep.on_event(sess, ev)

    feed(sess.connection_made())
    for b in cache_bytes:
        feed(sess.receive_data(b))
    return sess, store, feed, args


def exported(args) -> tuple[set, set]:
    a = json.loads(Path(args.export).read_text())["roas"]
    b = json.loads((Path(args.data_dir) / "vrps.json").read_text())["roas"]
    return {r["prefix"] for r in a}, {r["prefix"] for r in b}


TRANSFER = (
    P.CacheResponse(1, 5).encode()
    + P.PrefixPDU(1, True, A).encode()
    + P.PrefixPDU(1, True, B).encode()
    + P.EndOfData(1, 5, 1, 3600, 600, 7200).encode()
)


def test_files_are_rewritten_when_a_fatal_error_flushes_the_data(tmp_path, capsys):
    sess, store, feed, args = drive(tmp_path, [TRANSFER], [100.0])
    assert exported(args) == ({"192.0.2.0/24", "2001:db8::/32"},) * 2
    feed(sess.receive_data(P.ErrorReport(1, P.ErrorCode.CORRUPT_DATA, b"", "oops").encode()))
    assert store.counts()["vrps"] == 0
    assert exported(args) == (set(), set())  # not the VRPs the client no longer holds


def test_files_are_rewritten_when_the_data_expires(tmp_path, capsys):
    now = [100.0]
    sess, store, feed, args = drive(tmp_path, [TRANSFER], now)
    assert exported(args)[0] == {"192.0.2.0/24", "2001:db8::/32"}
    now[0] += 7200
    feed(sess.tick())
    assert store.counts()["vrps"] == 0 and exported(args) == (set(), set())


def test_atomic_write_leaves_no_temporary_file_and_replaces_whole(tmp_path):
    p = tmp_path / "f.json"
    _atomic_write(p, "old")
    _atomic_write(p, "new content")
    assert p.read_text() == "new content"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.json"]
